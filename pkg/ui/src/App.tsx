import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { HubConnection, type ConnState } from "./conn";
import { Detail } from "./Detail";
import { clampKeep, DEFAULT_KEEP, FeedStore, RateMeter } from "./feed";
import { FeedView } from "./FeedView";
import { addClause, filterFromURL, parseFilterError, urlWithFilter } from "./filter";
import { FilterBox, type FilterError } from "./FilterBox";
import { fmtCount } from "./format";
import { ServiceMapModel } from "./mapmodel";
import { ServiceMap } from "./ServiceMap";
import type { Entry } from "./types";

const KEEP_CHOICES = [1_000, 10_000, 50_000, 100_000];

/** subscribeURL is the hub's WebSocket, relative to the page (the session
 * cookie the hub set goes along). */
export function subscribeURL(filter: string, base = location.href): string {
  const u = new URL("v1/subscribe", base);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.search = "";
  if (filter !== "") u.searchParams.set("filter", filter);
  return u.toString();
}

function keepFromURL(): number {
  const v = new URLSearchParams(location.search).get("keep");
  return v ? clampKeep(Number(v)) : DEFAULT_KEEP;
}

export function App() {
  const initialFilter = useMemo(() => filterFromURL(location.search), []);
  const feed = useMemo(() => new FeedStore(keepFromURL()), []);
  const map = useMemo(() => new ServiceMapModel(), []);
  const meter = useMemo(() => new RateMeter(), []);
  const version = useSyncExternalStore(feed.subscribe, feed.getVersion);

  const [draft, setDraft] = useState(initialFilter);
  const [applied, setApplied] = useState<string | null>(null);
  const appliedRef = useRef<string | null>(null);
  const [filterError, setFilterError] = useState<FilterError | null>(null);
  const [pending, setPending] = useState(initialFilter !== "");
  const [hubError, setHubError] = useState<string | null>(null);
  const [refused, setRefused] = useState(false);
  const [conn, setConn] = useState<ConnState>({ phase: "connecting", failures: 0 });
  const [selected, setSelected] = useState<Entry | null>(null);
  const [tab, setTab] = useState<"feed" | "map">("feed");
  const [, tick] = useState(0);
  const hub = useRef<HubConnection | null>(null);

  useEffect(() => {
    const c = new HubConnection(
      {
        entry(e) {
          meter.add();
          feed.push(e);
          map.add(e);
        },
        dropped: (n) => feed.addHubDrops(n),
        stats: (s) => feed.setStats(s),
        applied(expr) {
          if (appliedRef.current !== expr) {
            // A new filter: what was shown matched the old one.
            if (appliedRef.current !== null) {
              feed.clear();
              map.clear();
              setSelected(null);
            }
            appliedRef.current = expr;
            setApplied(expr);
            history.replaceState(history.state, "", urlWithFilter(location.href, expr));
          }
          setFilterError(null);
          setPending(false);
        },
        filterError(expr, message) {
          setFilterError({ expr, issues: parseFilterError(expr, message) });
          setPending(false);
        },
        error: (m) => setHubError(m),
        state(s) {
          setConn(s);
          if (s.phase === "open") setRefused(false);
          // A WebSocket that fails says not why: ask the hub whether it
          // still takes this page's token (a new session on the port).
          if (s.phase === "waiting" && s.failures >= 2) {
            fetch("v1/heartbeat", { method: "POST", credentials: "same-origin" })
              .then((r) => setRefused(r.status === 401))
              .catch(() => setRefused(false));
          }
        },
      },
      initialFilter,
      { subscribeURL: (f) => subscribeURL(f) },
    );
    hub.current = c;
    c.start();
    // The rate and the retry countdown change without entries too.
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => {
      clearInterval(t);
      c.stop();
    };
  }, [feed, map, meter, initialFilter]);

  const submit = useCallback((expr: string) => {
    setFilterError(null);
    if (expr === appliedRef.current) return;
    setPending(true);
    hub.current?.setFilter(expr);
  }, []);

  const addToFilter = useCallback(
    (c: string) => {
      const next = addClause(appliedRef.current ?? "", c);
      setDraft(next);
      submit(next);
    },
    [submit],
  );

  const setKeep = (n: number) => {
    feed.setCapacity(n);
    const u = new URL(location.href);
    if (n === DEFAULT_KEEP) u.searchParams.delete("keep");
    else u.searchParams.set("keep", String(n));
    history.replaceState(history.state, "", u.pathname + u.search + u.hash);
  };

  return (
    <div className="app">
      <header className="top">
        <span className="brand">kubectl shark</span>
        <FilterBox draft={draft} applied={applied ?? ""} error={filterError} pending={pending} onDraft={setDraft} onSubmit={submit} />
        <ConnBadge s={conn} onRetry={() => hub.current?.reconnectNow()} />
      </header>
      <nav className="bar">
        <div className="tabs" role="tablist">
          <button role="tab" aria-selected={tab === "feed"} data-testid="tab-feed" onClick={() => setTab("feed")}>
            Feed
          </button>
          <button role="tab" aria-selected={tab === "map"} data-testid="tab-map" onClick={() => setTab("map")}>
            Service map
          </button>
        </div>
        <button data-testid="pause" className={feed.paused ? "paused" : ""} onClick={() => feed.setPaused(!feed.paused)}>
          {feed.paused ? (
            <>
              Resume · <span data-testid="paused-count">{feed.newWhilePaused}</span> new
            </>
          ) : (
            "Pause"
          )}
        </button>
        <span className="stat" data-testid="rate">
          {fmtCount(Math.round(meter.rate()))}/s
        </span>
        <span className="stat" data-testid="kept">
          {fmtCount(feed.length)} kept
        </span>
        <label className="stat">
          keep last{" "}
          <select data-testid="keep" value={feed.capacity} onChange={(ev) => setKeep(Number(ev.target.value))}>
            {[...new Set([...KEEP_CHOICES, feed.capacity])]
              .sort((a, b) => a - b)
              .map((n) => (
                <option key={n} value={n}>
                  {fmtCount(n)}
                </option>
              ))}
          </select>
        </label>
        <Drops hub={feed.drops.hub} packets={feed.drops.packets} entries={feed.drops.entries} />
      </nav>
      {refused && (
        <div className="banner" role="alert" data-testid="refused">
          The hub does not take this page's session token: its session has ended or another one took the port. Open the address
          that <code>kubectl shark ui</code> printed.
        </div>
      )}
      {hubError && (
        <div className="banner" role="alert">
          hub: {hubError} <button onClick={() => setHubError(null)}>dismiss</button>
        </div>
      )}
      <main className={"view-" + tab}>
        {tab === "feed" ? (
          <>
            <FeedView store={feed} version={version} selected={selected} onSelect={setSelected} />
            {selected && <Detail e={selected} onFilter={addToFilter} onClose={() => setSelected(null)} />}
          </>
        ) : (
          <ThrottledMap model={map} version={version} />
        )}
      </main>
    </div>
  );
}

/** ThrottledMap redraws the map at most twice a second. */
function ThrottledMap({ model, version }: { model: ServiceMapModel; version: number }) {
  const [shown, setShown] = useState(version);
  useEffect(() => {
    if (shown === version) return;
    const t = setTimeout(() => setShown(version), 500);
    return () => clearTimeout(t);
  }, [version, shown]);
  return <ServiceMap model={model} version={shown} />;
}

function Drops({ hub, packets, entries }: { hub: number; packets: number; entries: number }) {
  if (!hub && !packets && !entries) return <span className="stat ok" data-testid="drops">no drops</span>;
  const parts = [];
  if (hub) parts.push(`${fmtCount(hub)} entries (this page too slow)`);
  if (entries) parts.push(`${fmtCount(entries)} entries (workers → hub)`);
  if (packets) parts.push(`${fmtCount(packets)} packets (capture)`);
  return (
    <span className="stat bad" data-testid="drops" data-hub={hub} title={parts.join("\n")}>
      dropped: {parts.join(" · ")}
    </span>
  );
}

function ConnBadge({ s, onRetry }: { s: ConnState; onRetry(): void }) {
  if (s.phase === "open") {
    return (
      <span className="conn live" data-testid="conn" data-phase="open">
        ● live
      </span>
    );
  }
  if (s.phase === "connecting") {
    return (
      <span className="conn" data-testid="conn" data-phase="connecting">
        ○ connecting…
      </span>
    );
  }
  const secs = Math.max(0, Math.ceil(((s.retryAt ?? Date.now()) - Date.now()) / 1000));
  return (
    <span className="conn down" data-testid="conn" data-phase="waiting">
      ○ disconnected, retrying in {secs}s{" "}
      <button type="button" onClick={onRetry}>
        retry now
      </button>
    </span>
  );
}
