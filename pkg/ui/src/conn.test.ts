import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { HubConnection, NO_ENTRIES, type ConnState, type HubHandlers } from "./conn";
import { entry } from "./testentries";

/** FakeSocket stands in for the browser's WebSocket. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(s: string) {
    this.sent.push(JSON.parse(s));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  recv(type: string, data?: unknown) {
    this.onmessage?.({ data: JSON.stringify({ v: 1, type, data }) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.();
  }
}

const last = () => FakeSocket.all[FakeSocket.all.length - 1];

function setup(filter: string) {
  const log: string[] = [];
  const states: ConnState[] = [];
  const h: HubHandlers = {
    entry: (e) => log.push("entry " + e.id),
    dropped: (n) => log.push("dropped " + n),
    stats: () => log.push("stats"),
    applied: (x) => log.push("applied " + x),
    filterError: (x, m) => log.push(`filterError ${x}: ${m}`),
    error: (m) => log.push("error " + m),
    state: (s) => states.push(s),
  };
  const c = new HubConnection(h, filter, {
    subscribeURL: (f) => "ws://hub/v1/subscribe?filter=" + encodeURIComponent(f),
    WebSocket: FakeSocket as unknown as typeof WebSocket,
    random: () => 0,
  });
  return { c, log, states };
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

test("no filter: subscribes to everything and hands entries over", () => {
  const { c, log } = setup("");
  c.start();
  expect(last().url).toBe("ws://hub/v1/subscribe?filter=");
  last().open();
  last().recv("filter", { expr: "" });
  last().recv("entry", entry({ id: "a" }));
  last().recv("dropped", { n: 3 });
  last().recv("stats", { workers: [], hub: {} });
  expect(log).toEqual(["applied ", "entry a", "dropped 3", "stats"]);
});

test("a filter goes as a message after the hub accepts a safe one", () => {
  const { c, log } = setup('proto == "dns"');
  c.start();
  expect(last().url).toBe("ws://hub/v1/subscribe?filter=" + NO_ENTRIES);
  last().open();
  last().recv("filter", { expr: NO_ENTRIES });
  expect(last().sent).toEqual([{ v: 1, type: "filter", data: { expr: 'proto == "dns"' } }]);
  expect(log).toEqual([]);
  last().recv("filter", { expr: 'proto == "dns"' });
  expect(log).toEqual(['applied proto == "dns"']);
});

test("a refused filter is reported with the expression it was about", () => {
  const { c, log } = setup("");
  c.start();
  last().open();
  last().recv("filter", { expr: "" });
  c.setFilter("stauts == 1");
  last().recv("error", { message: "filter: 1:1: undeclared reference to 'stauts'" });
  last().recv("error", { message: "something else" });
  expect(log).toEqual(["applied ", "filterError stauts == 1: filter: 1:1: undeclared reference to 'stauts'", "error something else"]);
});

test("reconnects with backoff, on the last applied filter", () => {
  const { c, states } = setup("");
  c.start();
  last().open();
  last().recv("filter", { expr: "" });
  c.setFilter('proto == "http"');
  last().recv("filter", { expr: 'proto == "http"' });
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const before = FakeSocket.all.length;
    last().drop();
    const s = states[states.length - 1];
    expect(s.phase).toBe("waiting");
    delays.push(s.retryAt! - Date.now());
    vi.advanceTimersByTime(delays[i] - 1);
    expect(FakeSocket.all.length).toBe(before);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all.length).toBe(before + 1);
  }
  expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
  expect(last().url).toBe("ws://hub/v1/subscribe?filter=" + encodeURIComponent('proto == "http"'));
  // A working subscription starts the backoff over.
  last().open();
  last().recv("filter", { expr: 'proto == "http"' });
  last().drop();
  expect(states[states.length - 1].retryAt! - Date.now()).toBe(500);
  c.stop();
});

test("heartbeats every 10 s while open, none after close", () => {
  const { c } = setup("");
  c.start();
  const ws = last();
  ws.open();
  vi.advanceTimersByTime(25_000);
  expect(ws.sent).toEqual([{ v: 1, type: "heartbeat" }, { v: 1, type: "heartbeat" }]);
  c.stop();
  vi.advanceTimersByTime(60_000);
  expect(ws.sent).toHaveLength(2);
  expect(FakeSocket.all).toHaveLength(1); // stopped: no reconnect
});

test("rejects another message version and non-JSON", () => {
  const { c, log } = setup("");
  c.start();
  last().open();
  last().onmessage?.({ data: '{"v":2,"type":"entry","data":{}}' });
  last().onmessage?.({ data: "nope" });
  expect(log).toEqual(["error the hub speaks message version 2, this page 1", "error the hub sent a message that is not JSON"]);
});
