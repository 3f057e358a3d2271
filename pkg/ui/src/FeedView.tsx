import { memo, useCallback, useLayoutEffect, useRef, useState } from "react";
import type { FeedStore } from "./feed";
import { endpointLabel, fmtBytes, fmtDuration, fmtTime, protoColor, statusClass } from "./format";
import type { Entry } from "./types";

export const ROW_H = 22;
const OVERSCAN = 8;

export interface FeedViewProps {
  store: FeedStore;
  version: number;
  selected: Entry | null;
  onSelect(e: Entry): void;
}

/**
 * FeedView is a virtual list: it renders only the rows in view, so its
 * cost per frame does not grow with the number of entries kept. Newest
 * entries are at the bottom; while scrolled to the bottom it follows
 * them; scrolled up, it stays on the same entries as old ones are evicted.
 */
export function FeedView({ store, version, selected, onSelect }: FeedViewProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  const follow = useRef(true);
  // Where following last put the list: a position above it means the
  // user scrolled up, even before the scroll event says so.
  const followedTo = useRef(0);
  const seenEvicted = useRef(store.evicted);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const gone = store.evicted - seenEvicted.current;
    seenEvicted.current = store.evicted;
    if (follow.current && el.scrollTop < followedTo.current - 1) follow.current = false;
    if (follow.current) {
      el.scrollTop = el.scrollHeight;
      followedTo.current = el.scrollTop;
    } else if (gone > 0) el.scrollTop = Math.max(0, el.scrollTop - gone * ROW_H);
    else if (gone < 0) el.scrollTop = 0; // cleared
    if (el.scrollTop !== view.top || el.clientHeight !== view.height) {
      setView({ top: el.scrollTop, height: el.clientHeight });
    }
  });

  const onScroll = useCallback(() => {
    const el = ref.current;
    if (!el) return;
    follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_H / 2;
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, []);

  const n = store.length;
  const first = Math.max(0, Math.floor(view.top / ROW_H) - OVERSCAN);
  const last = Math.min(n, Math.ceil((view.top + view.height) / ROW_H) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) {
    const e = store.at(i)!;
    rows.push(<Row key={i - first} e={e} top={i * ROW_H} selected={e === selected} onSelect={onSelect} />);
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
          if (ev.deltaY < 0) follow.current = false;
        }}
        data-testid="feed-body"
      >
        <div style={{ height: n * ROW_H, position: "relative" }}>{rows}</div>
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
