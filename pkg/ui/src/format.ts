import { hostPort, isError } from "./mapmodel";
import type { Body, Endpoint, Entry } from "./types";

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** fmtTime shows a timestamp as local HH:MM:SS.mmm. */
export function fmtTime(ts: string): string {
  const d = new Date(ts);
  if (isNaN(d.getTime())) return ts;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** fmtDuration shows microseconds with a unit that keeps 2-3 digits. */
export function fmtDuration(us: number): string {
  if (!Number.isFinite(us) || us < 0) return "–";
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)}ms`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)}ms`;
  return `${(us / 1_000_000).toFixed(2)}s`;
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "–";
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  return `${(n / 1024 / 1024).toFixed(1)}M`;
}

export function fmtCount(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** endpointLabel names a side as namespace/pod, else namespace/service
 * (a service's address), else ip:port. */
export function endpointLabel(ep: Endpoint): string {
  const name = ep.pod || ep.service;
  if (name) return ep.namespace ? `${ep.namespace}/${name}` : name;
  return hostPort(ep.ip, ep.port);
}

/** statusClass colors a status: ok, redirect, client (4xx), error. */
export function statusClass(e: Entry): "ok" | "redirect" | "client" | "error" | "none" {
  if (isError(e)) return "error";
  const code = /^\d{3}$/.test(e.status) ? +e.status : NaN;
  if (code >= 400) return "client";
  if (code >= 300) return "redirect";
  if (e.status === "") return "none";
  return "ok";
}

export const PROTO_COLORS: Record<string, string> = {
  http: "#2b7bd6",
  http2: "#1f5fae",
  grpc: "#0f9d8a",
  graphql: "#c2188b",
  dns: "#8e5bd0",
  redis: "#d33b2c",
  kafka: "#444",
  amqp: "#e67e22",
  postgres: "#336791",
  mysql: "#00758f",
  websocket: "#6a8d00",
  tls: "#777",
  tcp: "#999",
  udp: "#aaa",
};

export function protoColor(p: string): string {
  return PROTO_COLORS[p] ?? "#888";
}

/** transportOf says whether the entry came over TCP or UDP. */
export function transportOf(e: Entry): "tcp" | "udp" {
  const t = e.dns?.transport ?? e.conn?.transport;
  return t === "udp" ? "udp" : "tcp";
}

/** pcapURL is the hub's export of the entry's connection (see
 * parsePcapQuery in pkg/hub/pcap.go), relative to the page. */
export function pcapURL(e: Entry): string {
  const q = new URLSearchParams();
  if (e.flow_id) q.set("flow", e.flow_id);
  q.set("transport", transportOf(e));
  q.set("a", hostPort(e.src.ip, e.src.port));
  q.set("b", hostPort(e.dst.ip, e.dst.port));
  return "v1/pcap?" + q.toString();
}

/** MAX_HEX bounds the bytes a hex dump shows. */
export const MAX_HEX = 16 << 10;

export interface BodyView {
  kind: "empty" | "json" | "text" | "hex";
  text: string;
  /** What the view leaves out, in words: truncation, a cut hex dump. */
  notes: string[];
}

/** bodyView renders a captured body: JSON pretty-printed, text as is,
 * binary as a hex dump; it says when the capture or the view is short. */
export function bodyView(b: Body | undefined, contentType = ""): BodyView {
  const notes: string[] = [];
  if (!b || (!b.data && !b.size)) return { kind: "empty", text: "", notes };
  if (b.decoded) notes.push(`${b.decoded} decoded`);
  if (b.encoding === "base64") {
    const bytes = decodeBase64(b.data ?? "");
    if (b.truncated) notes.push(`truncated: ${bytes.length} of ${b.size} bytes captured`);
    if (bytes.length > MAX_HEX) notes.push(`hex dump of the first ${MAX_HEX} bytes`);
    return { kind: "hex", text: hexDump(bytes.subarray(0, MAX_HEX)), notes };
  }
  const data = b.data ?? "";
  if (b.truncated) notes.push(`truncated: ${new TextEncoder().encode(data).length} of ${b.size} bytes captured`);
  const t = data.trimStart();
  if (!b.truncated && (contentType.includes("json") || t.startsWith("{") || t.startsWith("["))) {
    try {
      return { kind: "json", text: JSON.stringify(JSON.parse(data), null, 2), notes };
    } catch {
      /* not JSON after all */
    }
  }
  return { kind: "text", text: data, notes };
}

export function decodeBase64(s: string): Uint8Array {
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return new Uint8Array();
  }
}

/** hexDump renders bytes as offset, 16 hex bytes, and their ASCII. */
export function hexDump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < b.length; off += 16) {
    const row = b.subarray(off, off + 16);
    let hex = "";
    let ascii = "";
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += " ";
      if (i < row.length) {
        hex += row[i].toString(16).padStart(2, "0") + " ";
        ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
      } else hex += "   ";
    }
    lines.push(`${off.toString(16).padStart(8, "0")}  ${hex} |${ascii}|`);
  }
  return lines.join("\n");
}
