import { clause } from "./filter";
import { bodyView, fmtBytes, fmtDuration, pcapURL, protoColor, statusClass, transportOf } from "./format";
import { hostPort } from "./mapmodel";
import type { Body, Endpoint, Entry } from "./types";

export interface DetailProps {
  e: Entry;
  onFilter(clause: string): void;
  onClose(): void;
}

/** Detail shows one entry: what was asked and answered, with headers and
 * bodies, its timing, the connection it came on, and a pcap of that
 * connection. Field values are buttons that add themselves to the filter. */
export function Detail({ e, onFilter, onClose }: DetailProps) {
  const fv = (field: string, value: string | number | boolean, label?: string) => (
    <FieldValue field={field} value={value} label={label} onFilter={onFilter} />
  );
  const start = new Date(e.ts);
  const end = new Date(start.getTime() + e.elapsed_us / 1000);
  return (
    <aside className="detail" data-testid="detail" data-id={e.id}>
      <header>
        <span className="proto" style={{ background: protoColor(e.proto) }}>
          {e.proto}
        </span>{" "}
        <b>{e.method}</b> <span className="path">{e.path}</span>{" "}
        <span className={"status " + statusClass(e)}>{e.status}</span>
        <button className="close" onClick={onClose} aria-label="close detail">
          ×
        </button>
      </header>
      {e.error && <p className="entry-error">{e.error}</p>}
      <table className="kv">
        <tbody>
          <tr>
            <th>protocol</th>
            <td>{fv("proto", e.proto)}</td>
          </tr>
          {e.method && (
            <tr>
              <th>method</th>
              <td>{fv("method", e.method)}</td>
            </tr>
          )}
          {e.path && (
            <tr>
              <th>path</th>
              <td>{fv("path", e.path)}</td>
            </tr>
          )}
          {e.status && (
            <tr>
              <th>status</th>
              <td>{fv("status", e.status)}</td>
            </tr>
          )}
          <EndpointRows side="src" ep={e.src} fv={fv} />
          <EndpointRows side="dst" ep={e.dst} fv={fv} />
        </tbody>
      </table>

      <h3>Timing</h3>
      <table className="kv" data-testid="timing">
        <tbody>
          <tr>
            <th>started</th>
            <td>{isNaN(start.getTime()) ? e.ts : start.toISOString()}</td>
          </tr>
          <tr>
            <th>duration</th>
            <td>{fmtDuration(e.elapsed_us)}</td>
          </tr>
          <tr>
            <th>ended</th>
            <td>{isNaN(end.getTime()) ? "" : end.toISOString()}</td>
          </tr>
          <tr>
            <th>size</th>
            <td>
              request {fmtBytes(e.size?.request ?? 0)}, response {fmtBytes(e.size?.response ?? 0)}
            </td>
          </tr>
        </tbody>
      </table>

      {e.http?.request && (
        <Message
          title="Request"
          testid="request"
          line={`${e.http.request.method} ${e.http.request.target} HTTP/${e.http.version}`}
          headers={e.http.request.headers}
          trailers={e.http.request.trailers}
          body={e.http.request.body}
        />
      )}
      {e.http?.response && (
        <Message
          title="Response"
          testid="response"
          line={`${e.http.response.status} ${e.http.response.reason ?? ""}`}
          headers={e.http.response.headers}
          trailers={e.http.response.trailers}
          body={e.http.response.body}
        />
      )}
      <ProtocolDetail e={e} />

      <h3>Connection</h3>
      <table className="kv" data-testid="flow">
        <tbody>
          <tr>
            <th>flow</th>
            <td>{e.flow_id ? fv("flow_id", e.flow_id) : "–"}</td>
          </tr>
          <tr>
            <th>transport</th>
            <td>
              {transportOf(e)} {hostPort(e.src.ip, e.src.port)} → {hostPort(e.dst.ip, e.dst.port)}
            </td>
          </tr>
          <tr>
            <th>tls</th>
            <td data-testid="tls">{fv("tls", e.tls, e.tls ? "yes" : "no")}</td>
          </tr>
          <tr>
            <th>source</th>
            <td>{fv("source", e.source)}</td>
          </tr>
          {e.node && (
            <tr>
              <th>node</th>
              <td>{fv("node", e.node)}</td>
            </tr>
          )}
          {e.worker && (
            <tr>
              <th>worker</th>
              <td>{fv("worker", e.worker)}</td>
            </tr>
          )}
        </tbody>
      </table>
      <p>
        <a className="button" data-testid="pcap-download" href={pcapURL(e)} download={`shark-${e.flow_id || "flow"}.pcapng`}>
          Download pcap of this flow
        </a>
      </p>
      <details>
        <summary>Raw entry</summary>
        <pre className="raw">{JSON.stringify(e, null, 2)}</pre>
      </details>
    </aside>
  );
}

function FieldValue({ field, value, label, onFilter }: { field: string; value: string | number | boolean; label?: string; onFilter(c: string): void }) {
  const c = clause(field, value);
  return (
    <button type="button" className="fv" title={`add ${c} to the filter`} data-field={field} onClick={() => onFilter(c)}>
      {label ?? String(value)}
    </button>
  );
}

function EndpointRows({ side, ep, fv }: { side: "src" | "dst"; ep: Endpoint; fv: (f: string, v: string | number) => JSX.Element }) {
  const name = side === "src" ? "client" : "server";
  return (
    <>
      <tr>
        <th>{name}</th>
        <td>
          {ep.pod ? fv(`${side}.pod`, ep.pod) : null} {ep.namespace ? <>in {fv(`${side}.namespace`, ep.namespace)}</> : null}{" "}
          {fv(`${side}.ip`, ep.ip)}:{fv(`${side}.port`, ep.port)}
        </td>
      </tr>
      {(ep.workload || ep.service || ep.node || ep.process) && (
        <tr>
          <th />
          <td className="sub">
            {ep.workload ? <>workload {fv(`${side}.workload`, ep.workload)} </> : null}
            {ep.service ? <>service {fv(`${side}.service`, ep.service)} </> : null}
            {ep.node ? <>node {fv(`${side}.node`, ep.node)} </> : null}
            {ep.process ? (
              <span data-testid={`${side}-process`}>
                process {fv(`${side}.process`, ep.process)}
                {ep.pid ? <> (pid {ep.pid})</> : null}
              </span>
            ) : null}
          </td>
        </tr>
      )}
    </>
  );
}

function Message(props: {
  title: string;
  testid: string;
  line: string;
  headers?: Record<string, string>;
  trailers?: Record<string, string>;
  body?: Body;
}) {
  const { title, testid, line, headers, trailers, body } = props;
  const view = bodyView(body, headers?.["content-type"] ?? "");
  return (
    <section data-testid={testid}>
      <h3>{title}</h3>
      <pre className="startline">{line}</pre>
      <Headers h={headers} testid={`${testid}-headers`} />
      {trailers && Object.keys(trailers).length > 0 && (
        <>
          <h4>Trailers</h4>
          <Headers h={trailers} testid={`${testid}-trailers`} />
        </>
      )}
      <h4>
        Body {body ? <span className="sub">({fmtBytes(body.size)})</span> : null}
      </h4>
      {view.notes.map((n) => (
        <p className="note" key={n} data-testid={`${testid}-body-note`}>
          {n}
        </p>
      ))}
      {view.kind === "empty" ? <p className="sub">(empty)</p> : <pre className={"body " + view.kind} data-testid={`${testid}-body`}>{view.text}</pre>}
    </section>
  );
}

function Headers({ h, testid }: { h?: Record<string, string>; testid: string }) {
  const names = Object.keys(h ?? {}).sort();
  if (names.length === 0) return <p className="sub">(no headers)</p>;
  return (
    <table className="headers" data-testid={testid}>
      <tbody>
        {names.map((k) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{h![k]}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const PROTO_OBJECTS = ["grpc", "graphql", "dns", "redis", "kafka", "amqp", "postgres", "mysql", "websocket", "tls_hello", "conn"] as const;

/** ProtocolDetail shows the protocol's own object (everything but HTTP,
 * shown above): scalars as a table, the rest as JSON. */
function ProtocolDetail({ e }: { e: Entry }) {
  const blocks = PROTO_OBJECTS.filter((k) => e[k]).map((k) => {
    const obj = e[k] as Record<string, unknown>;
    const scalars = Object.entries(obj).filter(([, v]) => v === null || typeof v !== "object");
    const nested = Object.entries(obj).filter(([, v]) => v !== null && typeof v === "object");
    return (
      <section key={k} data-testid={`proto-${k}`}>
        <h3>{k}</h3>
        <table className="kv">
          <tbody>
            {scalars.map(([f, v]) => (
              <tr key={f}>
                <th>{f}</th>
                <td>{String(v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {nested.map(([f, v]) => (
          <div key={f}>
            <h4>{f}</h4>
            {isBody(v) ? <BodyBlock b={v} /> : <pre className="body json">{JSON.stringify(v, null, 2)}</pre>}
          </div>
        ))}
      </section>
    );
  });
  return <>{blocks}</>;
}

function isBody(v: unknown): v is Body {
  return typeof v === "object" && v !== null && "size" in v && ("data" in v || "encoding" in v || "truncated" in v);
}

function BodyBlock({ b }: { b: Body }) {
  const view = bodyView(b);
  return (
    <>
      {view.notes.map((n) => (
        <p className="note" key={n}>
          {n}
        </p>
      ))}
      {view.kind === "empty" ? <p className="sub">(empty)</p> : <pre className={"body " + view.kind}>{view.text}</pre>}
    </>
  );
}
