import { describe, expect, test, vi } from "vitest";
import { DEFAULT_KEEP, FeedStore, MAX_KEEP, RateMeter, clampKeep, throttled } from "./feed";
import { entries } from "./testentries";

const sync = (fn: () => void) => fn();
const ids = (s: FeedStore) => s.toArray().map((e) => e.id);

describe("FeedStore", () => {
  test("keeps the last N, oldest first, and counts evictions", () => {
    const s = new FeedStore(3, sync);
    for (const e of entries(5)) s.push(e);
    expect(ids(s)).toEqual(["e2", "e3", "e4"]);
    expect(s.length).toBe(3);
    expect(s.evicted).toBe(2);
    expect(s.at(0)?.id).toBe("e2");
    expect(s.at(3)).toBeUndefined();
    expect(s.at(-1)).toBeUndefined();
  });

  test("pause holds the list and counts what arrives; resume appends it", () => {
    const s = new FeedStore(4, sync);
    for (const e of entries(2)) s.push(e);
    s.setPaused(true);
    for (const e of entries(3, (i) => ({ id: `p${i}` }))) s.push(e);
    expect(ids(s)).toEqual(["e0", "e1"]);
    expect(s.newWhilePaused).toBe(3);
    s.setPaused(false);
    expect(ids(s)).toEqual(["e0", "e1", "p0", "p1", "p2"].slice(-4));
    expect(s.newWhilePaused).toBe(0);
    expect(s.evicted).toBe(1);
  });

  test("a long pause keeps only the last N waiting, and counts them all", () => {
    const s = new FeedStore(3, sync);
    s.setPaused(true);
    for (const e of entries(10)) s.push(e);
    expect(s.length).toBe(0);
    expect(s.newWhilePaused).toBe(10);
    s.setPaused(false);
    expect(ids(s)).toEqual(["e7", "e8", "e9"]);
    expect(s.evicted).toBe(0); // e0..e6 were never rows of the list
  });

  test("setCapacity keeps the newest", () => {
    const s = new FeedStore(5, sync);
    for (const e of entries(5)) s.push(e);
    s.setCapacity(2);
    expect(ids(s)).toEqual(["e3", "e4"]);
    expect(s.capacity).toBe(2);
    s.setCapacity(4);
    for (const e of entries(3, (i) => ({ id: `n${i}` }))) s.push(e);
    expect(ids(s)).toEqual(["e4", "n0", "n1", "n2"]);
  });

  test("clear empties the feed and what waits, but not the drop counts", () => {
    const s = new FeedStore(5, sync);
    for (const e of entries(3)) s.push(e);
    s.addHubDrops(7);
    s.setPaused(true);
    s.push(entries(1)[0]);
    s.clear();
    expect(s.length).toBe(0);
    expect(s.newWhilePaused).toBe(0);
    expect(s.drops.hub).toBe(7);
  });

  test("drop counts: the hub's notices add up, the workers' stats are totals", () => {
    const s = new FeedStore(5, sync);
    s.addHubDrops(3);
    s.addHubDrops(4);
    s.addHubDrops(-1);
    const w = (kernel: number, queue: number, shed: number, lost: number) => ({
      node: "n", worker: "w", time: "", packets: 0, bytes: 0, kernel_drops: kernel, queue_drops: queue,
      shed_packets: shed, entries: 0, entries_dropped: lost, sources: 1, targets: 1,
    });
    const hub = { entries_in: 0, entries_out: 0, dropped: 0, workers: 2, subscribers: 1 };
    s.setStats({ workers: [w(1, 2, 3, 4), w(10, 0, 0, 5)], hub });
    expect(s.drops).toEqual({ hub: 7, packets: 16, entries: 9 });
    s.setStats({ workers: null, hub });
    expect(s.drops).toEqual({ hub: 7, packets: 0, entries: 0 });
  });

  test("listeners hear once per frame however many entries come", () => {
    const frames: (() => void)[] = [];
    const s = new FeedStore(100, (fn) => frames.push(fn));
    let heard = 0;
    s.subscribe(() => heard++);
    for (const e of entries(50)) s.push(e);
    expect(frames).toHaveLength(1);
    expect(heard).toBe(0);
    frames.shift()!();
    expect(heard).toBe(1);
    s.push(entries(1)[0]);
    expect(frames).toHaveLength(1);
    expect(s.version).toBe(51);
  });

  test("clampKeep", () => {
    expect(clampKeep(0)).toBe(DEFAULT_KEEP);
    expect(clampKeep(NaN)).toBe(DEFAULT_KEEP);
    expect(clampKeep(12.7)).toBe(12);
    expect(clampKeep(1e9)).toBe(MAX_KEEP);
  });
});

test("RateMeter averages the last full seconds", () => {
  let now = 10_000;
  const m = new RateMeter(() => now);
  m.add(100);
  now += 1000;
  m.add(200);
  now += 1000;
  expect(m.rate()).toBe((100 + 200) / 4);
  now += 10_000; // silence clears the window
  expect(m.rate()).toBe(0);
});

test("throttled runs at most every interval, on a frame", async () => {
  vi.useFakeTimers();
  try {
    const runs: number[] = [];
    const schedule = throttled(100);
    schedule(() => runs.push(Date.now()));
    await vi.advanceTimersByTimeAsync(20);
    expect(runs).toHaveLength(1);
    schedule(() => runs.push(Date.now()));
    await vi.advanceTimersByTimeAsync(50);
    expect(runs).toHaveLength(1); // not yet 100 ms since the last run
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toHaveLength(2);
    expect(runs[1] - runs[0]).toBeGreaterThanOrEqual(100);
  } finally {
    vi.useRealTimers();
  }
});
