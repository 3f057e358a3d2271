import { memo, useCallback, useLayoutEffect, useRef, useState } from "react";
import type { FeedStore } from "./feed";
import { endpointLabel, fmtBytes, fmtDuration, fmtTime, protoColor, statusClass } from "./format";
import type { Entry } from "./types";

export const ROW_H = 22;
const OVERSCAN = 4;

export interface FeedViewProps {
  store: FeedStore;
  version: number;
  selected: Entry | null;
  onSelect(e: Entry): void;
}

/** Where the user scrolled to, and how many rows had been evicted then:
 * as more are evicted, the same entries move up by that many rows. */
interface UserPos {
  top: number;
  evicted: number;
}

/**
 * FeedView is a virtual list: it renders only the rows in view, so its
 * cost per redraw does not grow with the number of entries kept. Newest
 * entries are at the bottom; while scrolled to the bottom it follows
 * them; scrolled up, it stays on the same entries as old ones are evicted.
 *
 * It computes the scroll position instead of reading it back, so that a
 * redraw costs one layout, and keys rows by their entry's sequence number,
 * so that rows already shown are moved, not rewritten.
 */
export function FeedView({ store, version, selected, onSelect }: FeedViewProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [height, setHeight] = useState(600);
  const [user, setUser] = useState<UserPos | null>(null); // null: following
  const setByUs = useRef(-1); // the scrollTop the last redraw set

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const n = store.length;
  const bottom = Math.max(0, n * ROW_H - height);
  let top: number;
  if (user === null || n === 0 || store.evicted < user.evicted) top = bottom;
  else top = Math.min(bottom, Math.max(0, user.top - (store.evicted - user.evicted) * ROW_H));

  useLayoutEffect(() => {
    const el = ref.current;
    if (el && Math.abs(el.scrollTop - top) >= 1) {
      el.scrollTop = top;
      setByUs.current = el.scrollTop;
    }
  });

  const onScroll = useCallback(() => {
    const el = ref.current;
    if (!el || Math.abs(el.scrollTop - setByUs.current) < 1) return; // ours
    setByUs.current = -1;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_H / 2;
    setUser(atBottom ? null : { top: el.scrollTop, evicted: store.evicted });
  }, [store]);

  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(n, Math.ceil((top + height) / ROW_H) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) {
    const e = store.at(i)!;
    rows.push(<Row key={store.evicted + i} e={e} top={i * ROW_H} selected={e === selected} onSelect={onSelect} />);
  }
  return (
    <div className="feed" data-testid="feed" data-version={version}>
      <div className="feed-head row">
        <span>time</span>
        <span>src → dst</span>
        <span>proto</span>
        <span>method</span>
        <span>path</span>
        <span>status</span>
        <span className="num">latency</span>
        <span className="num">size</span>
      </div>
      <div
        className="feed-body"
        ref={ref}
        onScroll={onScroll}
        onWheel={(ev) => {
          // Stop following at once, not a frame later when the scroll lands.
          if (ev.deltaY < 0 && user === null && ref.current) setUser({ top: ref.current.scrollTop, evicted: store.evicted });
        }}
        data-testid="feed-body"
      >
        {/* The spacer gives the height; rows are placed against the
            scroller itself, whose size does not change as entries come,
            so that a redraw lays out only the rows that changed. */}
        <div style={{ height: n * ROW_H }} />
        {rows}
        {n === 0 && <div className="empty">Waiting for entries…</div>}
      </div>
    </div>
  );
}

interface RowProps {
  e: Entry;
  top: number;
  selected: boolean;
  onSelect(e: Entry): void;
}

const Row = memo(function Row({ e, top, selected, onSelect }: RowProps) {
  const size = (e.size?.request ?? 0) + (e.size?.response ?? 0);
  return (
    <div
      className={"row entry" + (selected ? " selected" : "")}
      style={{ transform: `translateY(${top}px)` }}
      data-testid="entry-row"
      data-id={e.id}
      data-proto={e.proto}
      onClick={() => onSelect(e)}
    >
      <span className="t">{fmtTime(e.ts)}</span>
      <span className="ends" title={`${endpointLabel(e.src)} → ${endpointLabel(e.dst)}`}>
        {endpointLabel(e.src)} → {endpointLabel(e.dst)}
      </span>
      <span>
        <span className="proto" style={{ background: protoColor(e.proto) }}>
          {e.proto}
        </span>
      </span>
      <span className="method">{e.method}</span>
      <span className="path" title={e.path}>
        {e.path}
      </span>
      <span className={"status " + statusClass(e)}>{e.status || (e.error ? "—" : "")}</span>
      <span className="num">{e.elapsed_us > 0 ? fmtDuration(e.elapsed_us) : ""}</span>
      <span className="num">{fmtBytes(size)}</span>
    </div>
  );
});
