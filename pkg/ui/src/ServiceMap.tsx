import { fmtCount, fmtDuration, protoColor } from "./format";
import { layout, NODE_H, NODE_W, type MapEdge, type Placed, type ServiceMapModel } from "./mapmodel";

/** ServiceMap draws the model: workloads in columns, callers left, and
 * one labelled curve per (client, server, protocol). A table below lists
 * the same edges, for reading exact numbers. */
export function ServiceMap({ model }: { model: ServiceMapModel; version: number }) {
  const { placed, width, height } = layout(model);
  const edges = [...model.edges.values()];
  // Edges between the same two nodes fan out, so their labels do not overlap.
  const pairIndex = new Map<string, number>();
  const pairCount = new Map<string, number>();
  for (const e of edges) pairCount.set(pairKey(e), (pairCount.get(pairKey(e)) ?? 0) + 1);
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
        {edges.map((e) => {
          const k = pairKey(e);
          const i = pairIndex.get(k) ?? 0;
          pairIndex.set(k, i + 1);
          return <Edge key={e.id} e={e} a={placed.get(e.from)!} b={placed.get(e.to)!} index={i} of={pairCount.get(k)!} />;
        })}
        {[...placed.values()].map((p) => (
          <g key={p.node.id} transform={`translate(${p.x},${p.y})`} data-testid="map-node" data-label={p.node.label}>
            <rect width={NODE_W} height={NODE_H} rx={6} className={"node " + p.node.kind} />
            <text x={10} y={17} className="node-label">
              {clip(p.node.label, 26)}
            </text>
            <text x={10} y={32} className="node-sub">
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

function pairKey(e: MapEdge): string {
  return e.from < e.to ? e.from + "|" + e.to : e.to + "|" + e.from;
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function Edge({ e, a, b, index, of }: { e: MapEdge; a: Placed; b: Placed; index: number; of: number }) {
  const spread = (index - (of - 1) / 2) * 26;
  let d: string;
  let lx: number;
  let ly: number;
  if (a === b) {
    // A call to itself: a loop above the node.
    const x = a.x + NODE_W / 2;
    d = `M${x - 20},${a.y} C${x - 40},${a.y - 50} ${x + 40},${a.y - 50} ${x + 20},${a.y}`;
    lx = x;
    ly = a.y - 40 + spread;
  } else if (b.column > a.column) {
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    d = `M${x1},${y1} C${mx},${y1 + spread} ${mx},${y2 + spread} ${x2},${y2}`;
    lx = mx;
    ly = (y1 + y2) / 2 + spread;
  } else {
    // Same column or backwards: an arc out to the right.
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x + NODE_W;
    const y2 = b.y + NODE_H / 2;
    const out = 60 + Math.abs(spread);
    d = `M${x1},${y1} C${x1 + out},${y1} ${x2 + out},${y2} ${x2},${y2}`;
    lx = Math.max(x1, x2) + out * 0.75;
    ly = (y1 + y2) / 2;
  }
  const rate = e.count ? e.errors / e.count : 0;
  const label = `${e.proto} ${fmtCount(e.count)}${rate > 0 ? ` · ${(rate * 100).toFixed(1)}% err` : ""} · ${fmtDuration(e.latency.quantile(0.5))}/${fmtDuration(e.latency.quantile(0.99))}`;
  return (
    <g className="edge">
      <path d={d} fill="none" stroke={protoColor(e.proto)} strokeWidth={1 + Math.min(4, Math.log10(e.count + 1))} markerEnd="url(#arrow)" opacity={0.8} />
      <text x={lx} y={ly - 4} textAnchor="middle" className={"edge-label" + (rate > 0 ? " bad" : "")}>
        {label}
      </text>
    </g>
  );
}
