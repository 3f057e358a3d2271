import type { Entry } from "./types";

/** entry returns a plausible HTTP entry, with fields overridden. */
export function entry(over: Partial<Entry> = {}): Entry {
  return {
    v: 1,
    id: "f1-1",
    ts: "2026-11-21T13:27:04.109697Z",
    elapsed_us: 5147,
    proto: "http",
    method: "GET",
    path: "/api/items",
    status: "200",
    src: { ip: "10.0.0.1", port: 33424, pod: "front-1", namespace: "shop", workload: "front" },
    dst: { ip: "10.0.0.2", port: 8080, pod: "cart-1", namespace: "shop", workload: "cart" },
    size: { request: 48, response: 312 },
    tls: false,
    source: "af_packet",
    flow_id: "fca27aeec40c3afd",
    ...over,
  };
}

export function entries(n: number, over: (i: number) => Partial<Entry> = () => ({})): Entry[] {
  return Array.from({ length: n }, (_, i) => entry({ id: `e${i}`, ...over(i) }));
}
