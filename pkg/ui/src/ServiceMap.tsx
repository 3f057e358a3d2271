import { fmtCount, fmtDuration, protoColor } from "./format";
import { layout, NODE_W, type MapEdge, type Placed, type ServiceMapModel } from "./mapmodel";

/** ServiceMap draws the model: workloads in columns, callers left, and
 * one labelled curve per (client, server, protocol). A table below lists
 * the same edges, for reading exact numbers. */
export function ServiceMap({ model }: { model: ServiceMapModel; version: number }) {
  const { placed, ends, width, height } = layout(model);
  const edges = [...model.edges.values()];
  const summary = model.summary();
  if (edges.length === 0) return <div className="map empty">No traffic to draw yet.</div>;
  return (
    <div className="map" data-testid="map">
      <svg width={width} height={height + 20} role="img" aria-label="service map">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#667" />
          </marker>
        </defs>
        {edges.map((e) => (
          <Edge key={e.id} e={e} a={placed.get(e.from)!} b={placed.get(e.to)!} y1={ends.get(e.id)!.y1} y2={ends.get(e.id)!.y2} />
        ))}
        {[...placed.values()].map((p) => (
          <g key={p.node.id} transform={`translate(${p.x},${p.y})`} data-testid="map-node" data-label={p.node.label}>
            <rect width={NODE_W} height={p.h} rx={6} className={"node " + p.node.kind} />
            <text x={10} y={p.h / 2 - 3} className="node-label">
              {clip(p.node.label, 26)}
            </text>
            <text x={10} y={p.h / 2 + 12} className="node-sub">
              {p.node.kind} · {fmtCount(p.node.count)}
            </text>
          </g>
        ))}
      </svg>
      {model.overflow > 0 && <p className="note">{model.overflow} entries not drawn: the map holds at most its bounds of nodes and edges.</p>}
      <table className="edges" data-testid="map-edges">
        <thead>
          <tr>
            <th>from</th>
            <th>to</th>
            <th>protocol</th>
            <th className="num">count</th>
            <th className="num">errors</th>
            <th className="num">p50</th>
            <th className="num">p99</th>
          </tr>
        </thead>
        <tbody>
          {summary.map((s) => (
            <tr key={s.from + "|" + s.to + "|" + s.proto} data-testid="map-edge" data-from={s.from} data-to={s.to} data-proto={s.proto} data-count={s.count}>
              <td>{s.from}</td>
              <td>{s.to}</td>
              <td>
                <span className="proto" style={{ background: protoColor(s.proto) }}>
                  {s.proto}
                </span>
              </td>
              <td className="num">{s.count}</td>
              <td className={"num" + (s.errorRate > 0 ? " status error" : "")}>{(s.errorRate * 100).toFixed(1)}%</td>
              <td className="num">{fmtDuration(s.p50us)}</td>
              <td className="num">{fmtDuration(s.p99us)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

/** Edge is a curve from its slot on the source to its slot on the
 * target, labelled beside the target, where edges do not crowd. */
function Edge({ e, a, b, y1, y2 }: { e: MapEdge; a: Placed; b: Placed; y1: number; y2: number }) {
  let d: string;
  let lx: number;
  let anchor: "end" | "start" | "middle" = "end";
  if (a === b) {
    // A call to itself: a loop out of the right side.
    const x = a.x + NODE_W;
    d = `M${x},${y1 - 6} C${x + 50},${y1 - 30} ${x + 50},${y2 + 30} ${x},${y2 + 6}`;
    lx = x + 44;
    anchor = "start";
  } else if (b.column > a.column) {
    const x1 = a.x + NODE_W;
    const x2 = b.x;
    const mx = (x1 + x2) / 2;
    d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    lx = x2 - 8;
  } else {
    // Same column or backwards: an arc out to the right.
    const x1 = a.x + NODE_W;
    const x2 = b.x + NODE_W;
    const out = 70 + Math.abs(y2 - y1) / 4;
    d = `M${x1},${y1} C${x1 + out},${y1} ${x2 + out},${y2} ${x2},${y2}`;
    lx = x2 + 10;
    anchor = "start";
  }
  const rate = e.count ? e.errors / e.count : 0;
  const label = `${e.proto} ${fmtCount(e.count)}${rate > 0 ? ` · ${(rate * 100).toFixed(1)}% err` : ""} · ${fmtDuration(e.latency.quantile(0.5))}/${fmtDuration(e.latency.quantile(0.99))}`;
  return (
    <g className="edge">
      <path d={d} fill="none" stroke={protoColor(e.proto)} strokeWidth={1 + Math.min(3, Math.log10(e.count + 1))} markerEnd="url(#arrow)" opacity={0.75} />
      <text x={lx} y={y2 - 3} textAnchor={anchor} className={"edge-label" + (rate > 0 ? " bad" : "")}>
        {label}
      </text>
    </g>
  );
}
