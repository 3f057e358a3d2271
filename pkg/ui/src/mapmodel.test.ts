import { describe, expect, test } from "vitest";
import { isError, LatencyHistogram, layout, MAX_EDGES, nodeFor, ServiceMapModel } from "./mapmodel";
import { entry } from "./testentries";

describe("LatencyHistogram", () => {
  test("quantiles within 4% of the true value", () => {
    const h = new LatencyHistogram();
    for (let us = 1; us <= 10_000; us++) h.add(us * 10);
    for (const [q, want] of [[0.5, 50_000], [0.99, 99_000], [0.01, 1_000]] as const) {
      const got = h.quantile(q);
      expect(Math.abs(got - want) / want).toBeLessThan(0.04);
    }
    expect(h.total).toBe(10_000);
  });
  test("empty, tiny and huge values", () => {
    const h = new LatencyHistogram();
    expect(h.quantile(0.5)).toBeNaN();
    h.add(0);
    expect(h.quantile(0.5)).toBe(1);
    h.add(1e15);
    expect(h.quantile(1)).toBeGreaterThan(1e10);
  });
});

test("nodeFor names by service, workload, pod, else address", () => {
  // A pod behind a service and the service's own address are one node.
  expect(nodeFor({ ip: "10.0.0.5", port: 8080, namespace: "a", workload: "deployment/cart", pod: "cart-1", service: "cart" }, true)).toEqual(
    nodeFor({ ip: "10.96.0.9", port: 80, namespace: "a", service: "cart" }, true),
  );
  expect(nodeFor({ ip: "1.1.1.1", port: 1, namespace: "a", workload: "w", pod: "p" }, true).id).toBe("w:a/w");
  expect(nodeFor({ ip: "1.1.1.1", port: 1, namespace: "a", pod: "p" }, true).label).toBe("a/p");
  expect(nodeFor({ ip: "1.1.1.1", port: 1, service: "s" }, true).label).toBe("s");
  expect(nodeFor({ ip: "1.1.1.1", port: 5, pod: "" }, false).label).toBe("1.1.1.1");
  expect(nodeFor({ ip: "1.1.1.1", port: 5 }, true).label).toBe("1.1.1.1:5");
  expect(nodeFor({ ip: "fd00::1", port: 5 }, true).label).toBe("[fd00::1]:5");
});

test.each([
  { name: "http 200", e: entry(), want: false },
  { name: "http 404", e: entry({ status: "404" }), want: false },
  { name: "http 503", e: entry({ status: "503" }), want: true },
  { name: "no response", e: entry({ status: "", error: "no response" }), want: true },
  { name: "grpc OK", e: entry({ proto: "grpc", status: "OK", grpc: { service: "s", method: "m", code: 0, status: "OK" } }), want: false },
  { name: "grpc NOT_FOUND", e: entry({ proto: "grpc", status: "NOT_FOUND", grpc: { service: "s", method: "m", code: 5, status: "NOT_FOUND" } }), want: true },
  { name: "dns NXDOMAIN", e: entry({ proto: "dns", dns: { transport: "udp", qname: "x", qtype: "A", rcode: "NXDOMAIN" } }), want: true },
  { name: "dns NOERROR", e: entry({ proto: "dns", dns: { transport: "udp", qname: "x", qtype: "A", rcode: "NOERROR" } }), want: false },
  { name: "redis error", e: entry({ proto: "redis", redis: { command: "GET", type: "error" } }), want: true },
  { name: "postgres error", e: entry({ proto: "postgres", postgres: { query: "x", error: "boom" } }), want: true },
])("isError: $name", ({ e, want }) => {
  expect(isError(e)).toBe(want);
});

describe("ServiceMapModel", () => {
  const add = (m: ServiceMapModel, from: string, to: string, proto: string, us: number, status = "200") =>
    m.add(
      entry({
        proto,
        status,
        elapsed_us: us,
        src: { ip: "10.0.0.1", port: 40000, namespace: "shop", workload: from },
        dst: { ip: "10.0.0.2", port: 80, namespace: "shop", workload: to },
      }),
    );

  test("one edge per client, server and protocol, with count, errors and quantiles", () => {
    const m = new ServiceMapModel();
    for (let i = 1; i <= 100; i++) add(m, "front", "cart", "http", i * 1000, i % 10 === 0 ? "500" : "200");
    add(m, "front", "cart", "grpc", 500, "OK");
    add(m, "cart", "db", "postgres", 200);
    const s = m.summary();
    expect(s.map(({ from, to, proto, count, errorRate }) => ({ from, to, proto, count, errorRate }))).toEqual([
      { from: "shop/front", to: "shop/cart", proto: "http", count: 100, errorRate: 0.1 },
      { from: "shop/cart", to: "shop/db", proto: "postgres", count: 1, errorRate: 0 },
      { from: "shop/front", to: "shop/cart", proto: "grpc", count: 1, errorRate: 0 },
    ]);
    expect(Math.abs(s[0].p50us - 50_000) / 50_000).toBeLessThan(0.04);
    expect(Math.abs(s[0].p99us - 99_000) / 99_000).toBeLessThan(0.04);
    expect(m.nodes.get("w:shop/cart")!.count).toBe(102);
  });

  test("bounded: past MAX_EDGES, entries are only counted", () => {
    const m = new ServiceMapModel();
    for (let i = 0; i < MAX_EDGES + 5; i++) add(m, `c${i % 200}`, `s${Math.floor(i / 200)}`, "http", 1);
    expect(m.edges.size).toBeLessThanOrEqual(MAX_EDGES);
    expect(m.nodes.size).toBeLessThanOrEqual(300);
    expect(m.overflow).toBeGreaterThan(0);
    m.clear();
    expect([m.edges.size, m.nodes.size, m.overflow]).toEqual([0, 0, 0]);
  });

  test("layout: callers left of callees, a cycle does not hang, a slot per edge", () => {
    const m = new ServiceMapModel();
    add(m, "front", "cart", "http", 1);
    add(m, "front", "cart", "grpc", 1);
    add(m, "cart", "db", "postgres", 1);
    add(m, "db", "cart", "http", 1); // a cycle back
    add(m, "a", "b", "http", 1);
    add(m, "b", "a", "http", 1); // a cycle without a root
    const { placed, ends } = layout(m);
    const col = (w: string) => placed.get("w:shop/" + w)!.column;
    expect([col("front"), col("cart"), col("db")]).toEqual([0, 1, 2]);
    expect(col("a")).toBe(0);
    expect(col("b")).toBe(1);
    // Two edges end on cart from front, and one from db: three slots, all distinct.
    const cart = placed.get("w:shop/cart")!;
    const slots = [...m.edges.values()].filter((e) => e.to === "w:shop/cart").map((e) => ends.get(e.id)!.y2);
    expect(new Set(slots).size).toBe(3);
    for (const y of slots) expect(y > cart.y && y < cart.y + cart.h).toBe(true);
    // Nodes of a column do not overlap.
    const c1 = [...placed.values()].filter((p) => p.column === 1).sort((x, y) => x.y - y.y);
    for (let i = 1; i < c1.length; i++) expect(c1[i].y).toBeGreaterThanOrEqual(c1[i - 1].y + c1[i - 1].h);
  });
});
