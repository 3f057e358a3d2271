import { WIRE_VERSION, type Entry, type Envelope, type SessionStats } from "./types";

export type Phase = "connecting" | "open" | "waiting";

export interface ConnState {
  phase: Phase;
  /** Failed attempts in a row. */
  failures: number;
  /** When phase is "waiting": the time of the next attempt (ms epoch). */
  retryAt?: number;
}

export interface HubHandlers {
  entry(e: Entry): void;
  dropped(n: number): void;
  stats(s: SessionStats): void;
  /** The hub applied expr: entries from now on match it. */
  applied(expr: string): void;
  /** The hub refused the filter the page asked for (the old one stays). */
  filterError(expr: string, message: string): void;
  /** Any other error message of the hub. */
  error(message: string): void;
  state(s: ConnState): void;
}

export interface ConnOptions {
  /** subscribeURL returns the WebSocket address for a filter. */
  subscribeURL: (filter: string) => string;
  heartbeatMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** For tests. */
  WebSocket?: typeof WebSocket;
  random?: () => number;
  now?: () => number;
}

export const HEARTBEAT_MS = 10_000;

/** NO_ENTRIES is the filter a connection starts with while the page's own
 * filter is not yet known to compile: it matches nothing. */
export const NO_ENTRIES = "false";

/**
 * HubConnection keeps one subscription to the hub open: it reconnects with
 * exponential backoff (and jitter) whenever the socket closes, sends a
 * heartbeat every 10 s while open (the hub removes an idle session), and
 * tracks which filter the hub has applied.
 *
 * A filter reaches the hub as a filter message, never in the subscribe
 * URL, unless the hub has already accepted it: the hub refuses a bad URL
 * filter with an HTTP error the page cannot read, while it answers a bad
 * filter message with an error envelope that names the position.
 */
export class HubConnection {
  private ws: WebSocket | null = null;
  private beat: ReturnType<typeof setInterval> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private stopped = true;
  /** The filter the page wants, and the last one the hub applied. */
  private desired: string;
  private applied: string | null = null;
  /** The filter message in flight, if any. */
  private sent: string | null = null;
  private readonly o: Required<ConnOptions>;

  constructor(
    private h: HubHandlers,
    filter: string,
    opts: ConnOptions,
  ) {
    this.desired = filter;
    this.o = {
      heartbeatMs: HEARTBEAT_MS,
      minBackoffMs: 500,
      maxBackoffMs: 10_000,
      WebSocket: globalThis.WebSocket,
      random: Math.random,
      now: Date.now,
      ...opts,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.closeSocket();
  }

  /** setFilter asks the hub for expr; applied or filterError answers. */
  setFilter(expr: string): void {
    this.desired = expr;
    this.sendFilter();
  }

  /** reconnectNow skips the backoff wait. */
  reconnectNow(): void {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retry);
    this.connect();
  }

  private connect(): void {
    const initial = this.applied ?? (this.desired.trim() === "" ? "" : NO_ENTRIES);
    let ws: WebSocket;
    try {
      ws = new this.o.WebSocket(this.o.subscribeURL(initial));
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.sent = null;
    this.h.state({ phase: "connecting", failures: this.failures });
    ws.onopen = () => {
      this.h.state({ phase: "open", failures: this.failures });
      this.beat = setInterval(() => this.send({ v: WIRE_VERSION, type: "heartbeat" }), this.o.heartbeatMs);
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.closeSocket();
      if (!this.stopped) this.scheduleRetry();
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  private closeSocket(): void {
    clearInterval(this.beat);
    this.beat = undefined;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === 0 || ws.readyState === 1) ws.close();
    }
  }

  /** backoff returns the delay before attempt n (from 1): doubling from
   * minBackoffMs up to maxBackoffMs, less up to a third at random so that
   * many pages do not come back at once. */
  backoff(n: number): number {
    const d = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.min(n - 1, 20));
    return Math.round(d * (1 - this.o.random() / 3));
  }

  private scheduleRetry(): void {
    this.failures++;
    const delay = this.backoff(this.failures);
    this.h.state({ phase: "waiting", failures: this.failures, retryAt: this.o.now() + delay });
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect(), delay);
  }

  private send(env: Envelope): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(env));
    return true;
  }

  private sendFilter(): void {
    if (this.applied === null || this.desired === this.applied) {
      return; // the connect ack comes first; or nothing to change
    }
    if (this.send({ v: WIRE_VERSION, type: "filter", data: { expr: this.desired } })) this.sent = this.desired;
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return;
    let env: Envelope;
    try {
      env = JSON.parse(data);
    } catch {
      this.h.error("the hub sent a message that is not JSON");
      return;
    }
    if (env.v !== WIRE_VERSION) {
      this.h.error(`the hub speaks message version ${env.v}, this page ${WIRE_VERSION}`);
      return;
    }
    switch (env.type) {
      case "entry":
        this.h.entry(env.data as Entry);
        return;
      case "dropped":
        this.h.dropped(Number((env.data as { n?: number })?.n) || 0);
        return;
      case "stats":
        this.h.stats(env.data as SessionStats);
        return;
      case "filter":
        this.onAck(String((env.data as { expr?: string })?.expr ?? ""));
        return;
      case "error":
        this.onError(String((env.data as { message?: string })?.message ?? "unknown error"));
        return;
    }
  }

  private onAck(expr: string): void {
    this.applied = expr;
    this.sent = null;
    // A working subscription: the next failure starts the backoff over.
    this.failures = 0;
    if (expr === this.desired) this.h.applied(expr);
    else this.sendFilter();
  }

  private onError(message: string): void {
    if (this.sent !== null) {
      const expr = this.sent;
      this.sent = null;
      this.h.filterError(expr, message);
      return;
    }
    this.h.error(message);
  }
}
