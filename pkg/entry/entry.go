// Package entry defines the Entry: one request/response pair, or one unpaired
// message, seen on one connection. It is the one data model shared by every
// layer (offline dissection, the worker, the hub wire, the terminal and the
// dashboard), and its JSON form is a stable, versioned contract.
package entry

import "time"

// Version is the schema version carried in every entry's "v" field. Bump it
// on any incompatible change of the JSON form.
const Version = 1

// Protocol names used in Entry.Proto.
const (
	ProtoHTTP     = "http"
	ProtoHTTP2    = "http2"
	ProtoGRPC     = "grpc"
	ProtoGraphQL  = "graphql"
	ProtoDNS      = "dns"
	ProtoRedis    = "redis"
	ProtoKafka    = "kafka"
	ProtoAMQP     = "amqp"
	ProtoPostgres = "postgres"
	ProtoMySQL    = "mysql"
	ProtoWS       = "websocket"
	ProtoTLS      = "tls"
	ProtoTCP      = "tcp" // a TCP connection of no known protocol: a summary
	ProtoUDP      = "udp" // a UDP flow of no known protocol: a summary
)

// Sources of the bytes an entry was dissected from.
const (
	SourceFile     = "file"
	SourceAFPacket = "af_packet"
	SourceEBPFTLS  = "ebpf_tls"
)

// Entry is one dissected exchange. Top-level Method, Path and Status hold the
// protocol's own operation, target and result as strings, so that every
// protocol renders and filters the same way; the object named after the
// protocol (HTTP, GRPC, DNS, ...) holds the full detail.
type Entry struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	TS        time.Time `json:"ts"`         // request start (first byte seen)
	ElapsedUS int64     `json:"elapsed_us"` // request start to response end
	Proto     string    `json:"proto"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Status    string    `json:"status"`
	Src       Endpoint  `json:"src"` // the client
	Dst       Endpoint  `json:"dst"` // the server
	Size      Size      `json:"size"`
	TLS       bool      `json:"tls"`
	Source    string    `json:"source"`
	Node      string    `json:"node,omitempty"`
	Worker    string    `json:"worker,omitempty"`
	FlowID    string    `json:"flow_id"`
	// Error says why an exchange is incomplete or suspect: "no response",
	// "capture gap", "undecodable header block", ... Empty when all is well.
	Error string `json:"error,omitempty"`

	HTTP *HTTP     `json:"http,omitempty"` // proto http, http2, grpc, graphql
	GRPC *GRPC     `json:"grpc,omitempty"`
	DNS  *DNS      `json:"dns,omitempty"`
	Conn *ConnInfo `json:"conn,omitempty"` // proto tcp, udp

	Redis    *Redis    `json:"redis,omitempty"`
	Kafka    *Kafka    `json:"kafka,omitempty"`
	AMQP     *AMQP     `json:"amqp,omitempty"`
	Postgres *Postgres `json:"postgres,omitempty"`
	MySQL    *MySQL    `json:"mysql,omitempty"`
	GraphQL  *GraphQL  `json:"graphql,omitempty"`
	WS       *WS       `json:"websocket,omitempty"`
	TLSInfo  *TLSInfo  `json:"tls_hello,omitempty"`
}

// Endpoint is one side of the exchange. Pod, Namespace, Node, Service and
// Workload are filled in when the IP is known to belong to a workload;
// PID and Process when the process at this end is known (the TLS tracer
// sees the process that made the TLS call).
type Endpoint struct {
	IP        string `json:"ip"`
	Port      int    `json:"port"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	Service   string `json:"service,omitempty"`
	Workload  string `json:"workload,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Process   string `json:"process,omitempty"` // the command name, as in /proc/PID/comm
}

// Size counts the bytes of the request and of the response as they crossed
// the wire (framing included, before any decompression).
type Size struct {
	Request  int64 `json:"request"`
	Response int64 `json:"response"`
}

// Body is a bounded capture of a message body. Size is the true size of the
// body on the wire (after de-chunking, before content decoding); Data holds
// at most the configured limit, and Truncated says when it holds less.
type Body struct {
	Size      int64  `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
	Encoding  string `json:"encoding,omitempty"` // "" for UTF-8 text, "base64" for binary
	Data      string `json:"data,omitempty"`
	// Decoded names the content coding (gzip, deflate) that was removed to
	// produce Data; empty when Data is the body as sent.
	Decoded string `json:"decoded,omitempty"`
}

// HTTP holds an HTTP/1.x or HTTP/2 exchange; gRPC and GraphQL entries carry
// it too, for their transport headers.
type HTTP struct {
	Version  string        `json:"version"`          // "1.0", "1.1" or "2"
	Stream   uint32        `json:"stream,omitempty"` // HTTP/2 stream id
	Request  *HTTPRequest  `json:"request,omitempty"`
	Response *HTTPResponse `json:"response,omitempty"`
	// Upgrade names the protocol the connection switched to after this
	// exchange (h2c, websocket), if it did.
	Upgrade string `json:"upgrade,omitempty"`
}

// HTTPRequest is a request head and body. Header names are lower case;
// repeated headers are joined with ", ".
type HTTPRequest struct {
	Method    string            `json:"method"`
	Target    string            `json:"target"` // request-target, or :path
	Authority string            `json:"authority,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Trailers  map[string]string `json:"trailers,omitempty"`
	Body      Body              `json:"body"`
}

// HTTPResponse is a response head and body.
type HTTPResponse struct {
	Status   int               `json:"status"`
	Reason   string            `json:"reason,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Trailers map[string]string `json:"trailers,omitempty"`
	Body     Body              `json:"body"`
	// Informational counts 1xx responses that preceded the final one.
	Informational int `json:"informational,omitempty"`
}

// GRPC is a gRPC call: one entry per call, streaming calls included.
type GRPC struct {
	Service string `json:"service"` // pkg.Svc
	Method  string `json:"method"`  // Method
	// Code is the grpc-status value, or -1 when no status was seen.
	Code    int    `json:"code"`
	Status  string `json:"status"` // OK, NOT_FOUND, ...
	Message string `json:"message,omitempty"`
	// RequestMessages and ResponseMessages count length-prefixed messages.
	RequestMessages  int           `json:"request_messages"`
	ResponseMessages int           `json:"response_messages"`
	Messages         []GRPCMessage `json:"messages,omitempty"` // the first few, each way
}

// GRPCMessage is one length-prefixed message, decoded without a schema.
type GRPCMessage struct {
	Dir        string `json:"dir"` // "request" or "response"
	Size       int    `json:"size"`
	Compressed bool   `json:"compressed,omitempty"`
	// Fields is a schema-less protobuf rendering such as
	// `1: "abc" 2: 42 3: {1: 7}` (field numbers, wire types inferred).
	Fields string `json:"fields,omitempty"`
	// Truncated says Fields covers only part of the message.
	Truncated bool `json:"truncated,omitempty"`
}

// DNS is one query and its answer, paired by id.
type DNS struct {
	ID        uint16      `json:"id"`
	Transport string      `json:"transport"` // "udp" or "tcp"
	QName     string      `json:"qname"`
	QType     string      `json:"qtype"`
	QClass    string      `json:"qclass,omitempty"`
	RCode     string      `json:"rcode,omitempty"`
	Flags     []string    `json:"flags,omitempty"` // aa, tc, rd, ra, ad, cd
	Answers   []DNSRecord `json:"answers,omitempty"`
	Authority []DNSRecord `json:"authority,omitempty"`
}

// DNSRecord is one resource record, its data rendered as text.
type DNSRecord struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

// ConnInfo summarises a connection of no known protocol, so nothing
// silently disappears.
type ConnInfo struct {
	Transport     string `json:"transport"` // "tcp" or "udp"
	ClientBytes   int64  `json:"client_bytes"`
	ServerBytes   int64  `json:"server_bytes"`
	ClientPackets int64  `json:"client_packets"`
	ServerPackets int64  `json:"server_packets"`
	// End says how the connection ended: fin, rst, timeout, eof (capture ended).
	End string `json:"end"`
}

// The protocol objects below are filled by the protocols issue; they are
// declared here so that the schema is one type.

// Redis is one command and its reply, or one pushed pub/sub message.
type Redis struct {
	Command string   `json:"command"`         // upper case: GET, HSET, or the push kind (message, pmessage)
	Args    []string `json:"args,omitempty"`  // the first arguments, each bounded
	Reply   string   `json:"reply,omitempty"` // the reply, rendered and bounded
	Type    string   `json:"type,omitempty"`  // the reply's RESP type: simple, error, integer, bulk, array, null, map, push, ...
	// Channel is the pub/sub channel of a pushed message.
	Channel string `json:"channel,omitempty"`
	// Protocol is 2 or 3 (RESP3 after HELLO 3); 0 while unknown.
	Protocol int `json:"protocol,omitempty"`
}

// Kafka is one request and its response, paired by correlation id.
type Kafka struct {
	APIKey        int16  `json:"api_key"`
	API           string `json:"api"`
	APIVersion    int16  `json:"api_version"`
	CorrelationID int32  `json:"correlation_id"`
	ClientID      string `json:"client_id,omitempty"`
	Topic         string `json:"topic,omitempty"` // the first topic named
	ErrorCode     int16  `json:"error_code,omitempty"`
	// Error is the name of ErrorCode (UNKNOWN_TOPIC_OR_PARTITION, ...).
	Error string `json:"error,omitempty"`
	// Topics lists the topics of the request, or of the response when the
	// request named none (Metadata for all topics); bounded.
	Topics []string `json:"topics,omitempty"`
	// Partitions counts topic partitions across the request's topics.
	Partitions int `json:"partitions,omitempty"`
	// GroupID is the consumer group (JoinGroup, Heartbeat, OffsetCommit,
	// OffsetFetch) or the coordinator key (FindCoordinator).
	GroupID string `json:"group_id,omitempty"`
	// Record batches carried by a Produce request or a Fetch response.
	Batches     int   `json:"batches,omitempty"`
	Records     int64 `json:"records,omitempty"`
	RecordBytes int64 `json:"record_bytes,omitempty"`
	// Compression lists the codecs of the batches (gzip, snappy, lz4,
	// zstd), comma-separated in the order seen; empty when none.
	Compression string `json:"compression,omitempty"`
}

// AMQP is one method (with its content, if any), and for a synchronous
// method, the reply that answered it.
type AMQP struct {
	Method     string `json:"method"` // class.method: queue.declare, basic.publish, ...
	Channel    uint16 `json:"channel"`
	Exchange   string `json:"exchange,omitempty"`
	RoutingKey string `json:"routing_key,omitempty"`
	Queue      string `json:"queue,omitempty"`
	Body       *Body  `json:"body,omitempty"`
	// Reply is the method that answered a synchronous one (queue.declare-ok,
	// or channel.close when the server refused it).
	Reply       string `json:"reply,omitempty"`
	ReplyCode   int    `json:"reply_code,omitempty"` // of a close or a basic.return
	ReplyText   string `json:"reply_text,omitempty"`
	ConsumerTag string `json:"consumer_tag,omitempty"`
	DeliveryTag uint64 `json:"delivery_tag,omitempty"`
	// Properties are the content header's basic properties (content-type,
	// delivery-mode, ...) and its headers table as "headers.NAME"; bounded.
	Properties map[string]string `json:"properties,omitempty"`
}

// Postgres is one statement and its outcome.
type Postgres struct {
	Query    string `json:"query"`
	Command  string `json:"command,omitempty"` // the CommandComplete tag ("INSERT 0 1"); for a Startup, the authentication method
	Rows     int64  `json:"rows,omitempty"`
	Error    string `json:"error"` // the ErrorResponse message
	SQLState string `json:"sqlstate,omitempty"`
	// Protocol is "simple" (Query) or "extended" (Parse/Bind/Execute).
	Protocol string `json:"protocol,omitempty"`
	// Statement names the prepared statement of an extended-protocol
	// Execute; empty for the unnamed one.
	Statement string `json:"statement,omitempty"`
	Params    int    `json:"params,omitempty"` // parameters bound
	// User, Database and Application come from the startup message.
	User        string `json:"user,omitempty"`
	Database    string `json:"database,omitempty"`
	Application string `json:"application,omitempty"`
}

// MySQL is one command and its outcome. The connection phase (greeting,
// login, authentication) is one entry too, with Command "Handshake".
type MySQL struct {
	Command string `json:"command"`         // COM_QUERY, COM_STMT_EXECUTE, ..., Handshake
	Query   string `json:"query,omitempty"` // SQL text (bounded); for an execute, the prepared text
	Rows    int64  `json:"rows,omitempty"`  // rows returned, over every result set
	Error   string `json:"error,omitempty"` // the ERR packet's message
	// Code and SQLState are the ERR packet's error code and SQL state.
	Code     int    `json:"code,omitempty"`
	SQLState string `json:"sqlstate,omitempty"`
	// Affected, InsertID and Warnings come from the OK packet.
	Affected int64 `json:"affected,omitempty"`
	InsertID int64 `json:"insert_id,omitempty"`
	Warnings int   `json:"warnings,omitempty"`
	Columns  int   `json:"columns,omitempty"` // columns of the (first) result set
	// Results counts the results (result sets and OK packets) of a
	// command that returned more than one (multi-statements, CALL).
	Results int `json:"results,omitempty"`
	// Statement is the prepared statement id; Params its parameter count.
	Statement uint32 `json:"statement,omitempty"`
	Params    int    `json:"params,omitempty"`
	// Truncated says Query holds only the start of the SQL text.
	Truncated bool `json:"truncated,omitempty"`
	// User, Database and ServerVersion come from the handshake (Database
	// also from COM_INIT_DB).
	User          string `json:"user,omitempty"`
	Database      string `json:"database,omitempty"`
	ServerVersion string `json:"server_version,omitempty"`
}

// GraphQL is one operation carried over HTTP.
type GraphQL struct {
	Operation string   `json:"operation"` // query, mutation, subscription
	Name      string   `json:"name,omitempty"`
	Errors    []string `json:"errors,omitempty"` // the first few error messages, bounded
	// ErrorCount is the length of the response's errors array.
	ErrorCount int `json:"error_count,omitempty"`
	// Fields names the operation's top-level fields (the first few).
	Fields []string `json:"fields,omitempty"`
	// Batch counts the operations of a batched request (a JSON array),
	// when it has more than one; the entry describes the first.
	Batch int `json:"batch,omitempty"`
}

// WS is one WebSocket message: a data message reassembled from its
// fragments, or a control frame.
type WS struct {
	Opcode    string `json:"opcode"` // text, binary, close, ping, pong
	Dir       string `json:"dir"`    // who sent it: "client" or "server"
	CloseCode int    `json:"close_code,omitempty"`
	// Payload is the unmasked (and inflated) payload, bounded; Size is
	// its size on the wire. A close frame's code and reason are in
	// CloseCode and CloseReason.
	Payload     Body   `json:"payload"`
	CloseReason string `json:"close_reason,omitempty"`
	// Frames counts the frames of a fragmented message (when more than one).
	Frames int `json:"frames,omitempty"`
	// Compressed says the message was sent with permessage-deflate.
	Compressed bool `json:"compressed,omitempty"`
}

// TLSInfo is what the handshake shows of a TLS connection.
type TLSInfo struct {
	SNI     string   `json:"sni,omitempty"`
	ALPN    []string `json:"alpn,omitempty"`    // protocols the client offered
	Version string   `json:"version,omitempty"` // negotiated: TLS1.3, TLS1.2, ...
	Cipher  string   `json:"cipher,omitempty"`  // negotiated cipher suite
	// ALPNSelected is the protocol the server chose, when the handshake
	// shows it in clear (TLS 1.2; TLS 1.3 encrypts it).
	ALPNSelected string `json:"alpn_selected,omitempty"`
	// Resumed says the server accepted a session resumption (PSK, ticket
	// or session id).
	Resumed bool `json:"resumed,omitempty"`
	// Alert is the first alert seen in clear, e.g. "handshake_failure".
	Alert string `json:"alert,omitempty"`
}
