import type { Endpoint, Entry } from "./types";

// The service map's model: workloads as nodes, one edge per (client,
// server, protocol) with its count, error count and latency quantiles.
// It is fed every entry that matches the filter, so it is bounded: past
// MAX_NODES nodes or MAX_EDGES edges, entries are only counted.

export const MAX_NODES = 300;
export const MAX_EDGES = 1000;

/** LatencyHistogram estimates quantiles in O(1) memory: log-spaced
 * buckets, each GAMMA times wider than the one before, so an estimate is
 * within about 4% of the true value. */
export class LatencyHistogram {
  static readonly GAMMA = 1.08;
  private static readonly LOG = Math.log(LatencyHistogram.GAMMA);
  private counts = new Uint32Array(320); // up to 1.08^319 µs ≈ 4.5e10 µs
  total = 0;

  add(us: number): void {
    const i = us <= 1 ? 0 : Math.min(this.counts.length - 1, Math.ceil(Math.log(us) / LatencyHistogram.LOG));
    this.counts[i]++;
    this.total++;
  }

  /** quantile returns the q-quantile in µs (NaN when empty). */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        if (i === 0) return 1;
        // The bucket's geometric middle: (γ^(i-1), γ^i].
        return Math.pow(LatencyHistogram.GAMMA, i - 0.5);
      }
    }
    return NaN;
  }
}

export interface MapNode {
  id: string;
  label: string;
  namespace: string;
  /** What names it: workload, pod, service, or only an address. */
  kind: "workload" | "pod" | "service" | "address";
  count: number; // entries it took part in
}

export interface MapEdge {
  id: string;
  from: string;
  to: string;
  proto: string;
  count: number;
  errors: number;
  latency: LatencyHistogram;
}

/** nodeFor names the map node of an endpoint: its service, so that a
 * call to a service's address and a call to one of its pods (which carry
 * the service's name too) meet on one node; else its workload, else its
 * pod. A client without a name is its IP (its port is ephemeral); a
 * server without one is ip:port. */
export function nodeFor(ep: Endpoint, server: boolean): Omit<MapNode, "count"> {
  const ns = ep.namespace ?? "";
  const scoped = (n: string) => (ns ? `${ns}/${n}` : n);
  if (ep.service) return { id: "s:" + scoped(ep.service), label: scoped(ep.service), namespace: ns, kind: "service" };
  if (ep.workload) return { id: "w:" + scoped(ep.workload), label: scoped(ep.workload), namespace: ns, kind: "workload" };
  if (ep.pod) return { id: "p:" + scoped(ep.pod), label: scoped(ep.pod), namespace: ns, kind: "pod" };
  const addr = server ? hostPort(ep.ip, ep.port) : ep.ip;
  return { id: "a:" + addr, label: addr, namespace: "", kind: "address" };
}

export function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** isError says whether an entry failed, by its protocol's own measure:
 * no response or another capture problem, HTTP 5xx, a gRPC status other
 * than OK, a DNS rcode other than NOERROR, an error reply or code. */
export function isError(e: Entry): boolean {
  if (e.error) return true;
  switch (e.proto) {
    case "http":
    case "http2":
    case "graphql": {
      const s = e.http?.response?.status ?? parseInt(e.status, 10);
      if (s >= 500) return true;
      return (e.graphql?.error_count ?? 0) > 0;
    }
    case "grpc":
      return e.grpc ? e.grpc.code > 0 : e.status !== "" && e.status !== "OK";
    case "dns":
      return !!e.dns?.rcode && e.dns.rcode !== "NOERROR";
    case "redis":
      return e.redis?.type === "error";
    case "kafka":
      return (e.kafka?.error_code ?? 0) !== 0;
    case "postgres":
      return !!e.postgres?.error;
    case "mysql":
      return !!e.mysql?.error;
    case "amqp":
      return (e.amqp?.reply_code ?? 0) >= 300;
    case "tls":
      return !!e.tls_hello?.alert;
  }
  return false;
}

export class ServiceMapModel {
  readonly nodes = new Map<string, MapNode>();
  readonly edges = new Map<string, MapEdge>();
  /** Entries not drawn because a bound was reached. */
  overflow = 0;
  version = 0;

  add(e: Entry): void {
    this.version++;
    const a = nodeFor(e.src, false);
    const b = nodeFor(e.dst, true);
    const id = a.id + "\u0000" + b.id + "\u0000" + e.proto;
    let edge = this.edges.get(id);
    if (!edge) {
      const newNodes = (this.nodes.has(a.id) ? 0 : 1) + (this.nodes.has(b.id) && a.id !== b.id ? 0 : 1);
      if (this.edges.size >= MAX_EDGES || this.nodes.size + newNodes > MAX_NODES) {
        this.overflow++;
        return;
      }
      edge = { id, from: a.id, to: b.id, proto: e.proto, count: 0, errors: 0, latency: new LatencyHistogram() };
      this.edges.set(id, edge);
    }
    this.touch(a);
    if (b.id !== a.id) this.touch(b);
    edge.count++;
    if (isError(e)) edge.errors++;
    if (e.elapsed_us > 0) edge.latency.add(e.elapsed_us);
  }

  private touch(n: Omit<MapNode, "count">): void {
    const have = this.nodes.get(n.id);
    if (have) have.count++;
    else this.nodes.set(n.id, { ...n, count: 1 });
  }

  clear(): void {
    this.nodes.clear();
    this.edges.clear();
    this.overflow = 0;
    this.version++;
  }

  /** summary lists the edges as plain values, busiest first. */
  summary(): EdgeSummary[] {
    return [...this.edges.values()]
      .map((e) => ({
        from: this.nodes.get(e.from)!.label,
        to: this.nodes.get(e.to)!.label,
        proto: e.proto,
        count: e.count,
        errorRate: e.count ? e.errors / e.count : 0,
        p50us: e.latency.quantile(0.5),
        p99us: e.latency.quantile(0.99),
      }))
      .sort((x, y) => y.count - x.count || x.from.localeCompare(y.from) || x.to.localeCompare(y.to) || x.proto.localeCompare(y.proto));
  }
}

export interface EdgeSummary {
  from: string;
  to: string;
  proto: string;
  count: number;
  errorRate: number;
  p50us: number;
  p99us: number;
}

export interface Placed {
  node: MapNode;
  x: number;
  y: number;
  /** Height: nodes grow with the edges that end on them, one label each. */
  h: number;
  column: number;
}

export const NODE_W = 190;
export const NODE_H = 40;
export const LABEL_H = 14;
const COL_GAP = 300; // room for the edge labels, written beside their target
const ROW_GAP = 28;

export interface Layout {
  placed: Map<string, Placed>;
  /** Where each edge leaves its source and reaches its target (y). */
  ends: Map<string, { y1: number; y2: number }>;
  width: number;
  height: number;
}

/** layout places nodes in columns by their distance from a client (a node
 * nobody calls): callers left, callees right. Nodes only in cycles start
 * a column of their own. Within a column, nodes are sorted by name, so the
 * picture is stable while counts change. Each edge gets its own slot on
 * the side of its source and of its target. */
export function layout(m: ServiceMapModel): Layout {
  const out = new Map<string, string[]>();
  const indeg = new Map<string, number>();
  const inEdges = new Map<string, MapEdge[]>();
  const outEdges = new Map<string, MapEdge[]>();
  for (const id of m.nodes.keys()) indeg.set(id, 0);
  for (const e of m.edges.values()) {
    (inEdges.get(e.to) ?? inEdges.set(e.to, []).get(e.to)!).push(e);
    (outEdges.get(e.from) ?? outEdges.set(e.from, []).get(e.from)!).push(e);
    if (e.from === e.to) continue;
    const l = out.get(e.from) ?? [];
    if (!l.includes(e.to)) {
      l.push(e.to);
      indeg.set(e.to, (indeg.get(e.to) ?? 0) + 1);
    }
    out.set(e.from, l);
  }
  const column = new Map<string, number>();
  const ids = [...m.nodes.keys()].sort();
  const visit = (roots: string[]) => {
    const queue = roots.map((r) => [r, 0] as [string, number]);
    for (const r of roots) column.set(r, 0);
    // Breadth first, each node at its shortest distance: cycles end.
    while (queue.length) {
      const [id, d] = queue.shift()!;
      for (const to of out.get(id) ?? []) {
        if (column.has(to)) continue;
        column.set(to, d + 1);
        queue.push([to, d + 1]);
      }
    }
  };
  visit(ids.filter((id) => indeg.get(id) === 0));
  for (const id of ids) if (!column.has(id)) visit([id]);

  const cols: string[][] = [];
  for (const id of ids) {
    const c = column.get(id)!;
    (cols[c] ??= []).push(id);
  }
  const label = (id: string) => m.nodes.get(id)!.label;
  const placed = new Map<string, Placed>();
  let height = 0;
  cols.forEach((col, c) => {
    col.sort((x, y) => label(x).localeCompare(label(y)));
    let y = 20;
    for (const id of col) {
      const h = Math.max(NODE_H, (inEdges.get(id)?.length ?? 0) * LABEL_H + 12);
      placed.set(id, { node: m.nodes.get(id)!, x: 20 + c * (NODE_W + COL_GAP), y, h, column: c });
      y += h + ROW_GAP;
    }
    height = Math.max(height, y);
  });
  const ends = new Map<string, { y1: number; y2: number }>();
  const slot = (p: Placed, i: number, k: number) => p.y + ((i + 0.5) * p.h) / k;
  const byPeer = (peer: (e: MapEdge) => string) => (x: MapEdge, y: MapEdge) =>
    placed.get(peer(x))!.y - placed.get(peer(y))!.y || x.proto.localeCompare(y.proto);
  for (const [id, es] of outEdges) {
    es.sort(byPeer((e) => e.to));
    es.forEach((e, i) => ends.set(e.id, { y1: slot(placed.get(id)!, i, es.length), y2: 0 }));
  }
  for (const [id, es] of inEdges) {
    es.sort(byPeer((e) => e.from));
    es.forEach((e, i) => (ends.get(e.id)!.y2 = slot(placed.get(id)!, i, es.length)));
  }
  const width = 40 + cols.length * (NODE_W + COL_GAP);
  return { placed, ends, width: Math.max(width, 200), height: Math.max(height, 100) };
}
