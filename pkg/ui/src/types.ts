// The Entry JSON schema (pkg/entry/entry.go) and the wire envelopes
// (pkg/wire) the dashboard reads. Only what the dashboard uses is typed;
// protocol objects it shows generically stay loose.

export interface Endpoint {
  ip: string;
  port: number;
  pod?: string;
  namespace?: string;
  node?: string;
  service?: string;
  workload?: string;
  pid?: number; // the process at this end, when the TLS tracer saw it
  process?: string;
}

export interface Body {
  size: number;
  truncated?: boolean;
  encoding?: string; // "" text, "base64" binary
  data?: string;
  decoded?: string;
}

export interface HTTPRequest {
  method: string;
  target: string;
  authority?: string;
  headers?: Record<string, string>;
  trailers?: Record<string, string>;
  body: Body;
}

export interface HTTPResponse {
  status: number;
  reason?: string;
  headers?: Record<string, string>;
  trailers?: Record<string, string>;
  body: Body;
  informational?: number;
}

export interface HTTP {
  version: string;
  stream?: number;
  request?: HTTPRequest;
  response?: HTTPResponse;
  upgrade?: string;
}

export interface Entry {
  v: number;
  id: string;
  ts: string;
  elapsed_us: number;
  proto: string;
  method: string;
  path: string;
  status: string;
  src: Endpoint;
  dst: Endpoint;
  size: { request: number; response: number };
  tls: boolean;
  source: string;
  node?: string;
  worker?: string;
  flow_id: string;
  error?: string;
  http?: HTTP;
  grpc?: { service: string; method: string; code: number; status: string; message?: string; [k: string]: unknown };
  dns?: { transport: string; qname: string; qtype: string; rcode?: string; [k: string]: unknown };
  conn?: { transport: string; [k: string]: unknown };
  redis?: { command: string; type?: string; [k: string]: unknown };
  kafka?: { api: string; error_code?: number; [k: string]: unknown };
  amqp?: { method: string; reply_code?: number; [k: string]: unknown };
  postgres?: { query: string; error?: string; [k: string]: unknown };
  mysql?: { command: string; error?: string; [k: string]: unknown };
  graphql?: { operation: string; error_count?: number; [k: string]: unknown };
  websocket?: { opcode: string; dir: string; payload: Body; [k: string]: unknown };
  tls_hello?: { sni?: string; alert?: string; [k: string]: unknown };
}

/** Stats of one worker (wire.Stats): totals since it started. */
export interface WorkerStats {
  node: string;
  worker: string;
  time: string;
  packets: number;
  bytes: number;
  kernel_drops: number;
  queue_drops: number;
  shed_packets: number;
  shedding?: boolean;
  entries: number;
  entries_dropped: number;
  sources: number;
  targets: number;
}

/** The stats message to subscribers (wire.SessionStats). */
export interface SessionStats {
  workers: WorkerStats[] | null;
  hub: { entries_in: number; entries_out: number; dropped: number; workers: number; subscribers: number };
}

export interface Envelope {
  v: number;
  type: string;
  data?: unknown;
}

/** The envelope version the dashboard speaks (wire.Version). */
export const WIRE_VERSION = 1;
