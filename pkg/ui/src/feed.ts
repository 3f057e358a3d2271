import type { Entry, SessionStats } from "./types";

/** Drops the feed shows: what the hub could not send this page, and what
 * the workers lost before entries reached the hub. */
export interface DropCounts {
  /** Entries the hub dropped for this page (dropped envelopes). */
  hub: number;
  /** Packets the workers lost: kernel ring, queues, memory shedding. */
  packets: number;
  /** Entries the workers could not send to the hub. */
  entries: number;
}

export const DEFAULT_KEEP = 10_000;
export const MAX_KEEP = 200_000;

/** Runs fn later, once for any number of changes; tests pass a
 * synchronous one. */
export type Scheduler = (fn: () => void) => void;

/** REDRAW_MS bounds how often the feed redraws: ten times a second is as
 * fast as anyone reads a scrolling list, and it leaves the main thread
 * free for input however fast entries come. */
export const REDRAW_MS = 100;

/** throttled runs fn on the first frame at least REDRAW_MS after its
 * last run. */
export function throttled(intervalMs = REDRAW_MS): Scheduler {
  let last = 0;
  return (fn) => {
    const wait = Math.max(0, last + intervalMs - Date.now());
    setTimeout(() => {
      const run = () => {
        last = Date.now();
        fn();
      };
      if (typeof requestAnimationFrame === "function") requestAnimationFrame(run);
      else run();
    }, wait);
  };
}

/**
 * FeedStore keeps the last N entries in a ring, the newest last. While
 * paused, new entries wait in a second ring (also the last N) and are
 * counted; resuming appends them. Listeners are told at most every
 * REDRAW_MS, however fast entries come: rendering costs per redraw, not
 * per entry.
 */
export class FeedStore {
  private buf: (Entry | undefined)[];
  private head = 0; // index of the oldest entry in buf
  private len = 0;
  private pending: Entry[] = [];
  private listeners = new Set<() => void>();
  private scheduled = false;

  /** Rows removed from the front of the list since the last clear: the
   * list keeps its scroll position on the same entries with it. */
  evicted = 0;
  /** Entries that arrived while paused (including those over capacity). */
  newWhilePaused = 0;
  paused = false;
  drops: DropCounts = { hub: 0, packets: 0, entries: 0 };
  /** Increases on every change: the snapshot React compares. */
  version = 0;

  constructor(
    private cap: number = DEFAULT_KEEP,
    private schedule: Scheduler = throttled(),
  ) {
    this.cap = clampKeep(cap);
    this.buf = new Array(this.cap);
  }

  get capacity(): number {
    return this.cap;
  }

  get length(): number {
    return this.len;
  }

  /** at returns the i-th kept entry, 0 the oldest. */
  at(i: number): Entry | undefined {
    if (i < 0 || i >= this.len) return undefined;
    return this.buf[(this.head + i) % this.cap];
  }

  /** toArray returns the kept entries, oldest first (for tests and export). */
  toArray(): Entry[] {
    const out: Entry[] = [];
    for (let i = 0; i < this.len; i++) out.push(this.at(i)!);
    return out;
  }

  push(e: Entry): void {
    if (this.paused) {
      this.newWhilePaused++;
      this.pending.push(e);
      // Amortized trim: never more than 2N waiting.
      if (this.pending.length >= 2 * this.cap) this.pending = this.pending.slice(-this.cap);
    } else {
      this.append(e);
    }
    this.changed();
  }

  private append(e: Entry): void {
    if (this.len < this.cap) {
      this.buf[(this.head + this.len) % this.cap] = e;
      this.len++;
      return;
    }
    this.buf[this.head] = e; // overwrite the oldest
    this.head = (this.head + 1) % this.cap;
    this.evicted++;
  }

  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (!paused) {
      // Only the last N can be shown; those before them never were.
      const waiting = this.pending.length > this.cap ? this.pending.slice(-this.cap) : this.pending;
      for (const e of waiting) this.append(e);
      this.pending = [];
      this.newWhilePaused = 0;
    }
    this.changed();
  }

  /** setCapacity keeps the newest min(n, length) entries. */
  setCapacity(n: number): void {
    n = clampKeep(n);
    if (n === this.cap) return;
    const kept = this.toArray().slice(-n);
    this.evicted += this.len - kept.length;
    this.cap = n;
    this.buf = new Array(n);
    this.head = 0;
    this.len = 0;
    for (const e of kept) this.append(e);
    this.changed();
  }

  /** clear empties the feed (a new filter); drop counts stay. */
  clear(): void {
    this.buf = new Array(this.cap);
    this.head = 0;
    this.len = 0;
    this.evicted = 0;
    this.pending = [];
    this.newWhilePaused = 0;
    this.changed();
  }

  /** addHubDrops counts a dropped envelope's n. */
  addHubDrops(n: number): void {
    if (!(n > 0)) return;
    this.drops = { ...this.drops, hub: this.drops.hub + n };
    this.changed();
  }

  /** setStats takes the workers' totals from a stats envelope. */
  setStats(s: SessionStats): void {
    let packets = 0;
    let entries = 0;
    for (const w of s.workers ?? []) {
      packets += (w.kernel_drops || 0) + (w.queue_drops || 0) + (w.shed_packets || 0);
      entries += w.entries_dropped || 0;
    }
    if (packets === this.drops.packets && entries === this.drops.entries) return;
    this.drops = { ...this.drops, packets, entries };
    this.changed();
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  private changed(): void {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      for (const fn of this.listeners) fn();
    });
  }
}

export function clampKeep(n: number): number {
  if (!Number.isFinite(n) || n < 1) return DEFAULT_KEEP;
  return Math.min(Math.floor(n), MAX_KEEP);
}

/** RateMeter counts events per second over the last few seconds. */
export class RateMeter {
  private buckets = new Float64Array(5);
  private second = 0;

  constructor(private now: () => number = () => Date.now()) {
    this.second = Math.floor(this.now() / 1000);
  }

  add(n = 1): void {
    this.advance();
    this.buckets[this.second % this.buckets.length] += n;
  }

  /** rate is the mean over the last full seconds. */
  rate(): number {
    this.advance();
    let sum = 0;
    const k = this.buckets.length;
    for (let i = 1; i < k; i++) sum += this.buckets[(this.second - i + k * 2) % k];
    return sum / (k - 1);
  }

  private advance(): void {
    const s = Math.floor(this.now() / 1000);
    const k = this.buckets.length;
    for (let t = this.second + 1; t <= s && t <= this.second + k; t++) this.buckets[t % k] = 0;
    this.second = Math.max(s, this.second);
  }
}
