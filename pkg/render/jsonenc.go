package render

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// AppendJSON appends the JSON form of e, byte for byte what encoding/json's
// Marshal produces for it (field order, omitempty, HTML-safe string
// escaping, sorted map keys, RFC 3339 times), without reflection and
// without allocating beyond the growth of dst. No newline is added.
//
// Each type of pkg/entry has one function below; a test fills every field
// of every type at random and compares with encoding/json, so a field added
// to pkg/entry and not here fails it.
func AppendJSON(dst []byte, e *entry.Entry) []byte {
	if e == nil {
		return append(dst, "null"...)
	}
	dst = appendInt(append(dst, `{"v":`...), int64(e.V))
	dst = appendString(append(dst, `,"id":`...), e.ID)
	dst = appendTime(append(dst, `,"ts":`...), e.TS)
	dst = appendInt(append(dst, `,"elapsed_us":`...), e.ElapsedUS)
	dst = appendString(append(dst, `,"proto":`...), e.Proto)
	dst = appendString(append(dst, `,"method":`...), e.Method)
	dst = appendString(append(dst, `,"path":`...), e.Path)
	dst = appendString(append(dst, `,"status":`...), e.Status)
	dst = appendEndpoint(append(dst, `,"src":`...), &e.Src)
	dst = appendEndpoint(append(dst, `,"dst":`...), &e.Dst)
	dst = appendInt(append(dst, `,"size":{"request":`...), e.Size.Request)
	dst = appendInt(append(dst, `,"response":`...), e.Size.Response)
	dst = appendBool(append(dst, `},"tls":`...), e.TLS)
	dst = appendString(append(dst, `,"source":`...), e.Source)
	dst = appendOptString(dst, `,"node":`, e.Node)
	dst = appendOptString(dst, `,"worker":`, e.Worker)
	dst = appendString(append(dst, `,"flow_id":`...), e.FlowID)
	dst = appendOptString(dst, `,"error":`, e.Error)
	if e.HTTP != nil {
		dst = appendHTTP(append(dst, `,"http":`...), e.HTTP)
	}
	if e.GRPC != nil {
		dst = appendGRPC(append(dst, `,"grpc":`...), e.GRPC)
	}
	if e.DNS != nil {
		dst = appendDNS(append(dst, `,"dns":`...), e.DNS)
	}
	if e.Conn != nil {
		dst = appendConn(append(dst, `,"conn":`...), e.Conn)
	}
	return appendL7(dst, e)
}

// appendL7 appends the objects of the protocols beyond HTTP, gRPC and DNS.
func appendL7(dst []byte, e *entry.Entry) []byte {
	if e.Redis != nil {
		dst = appendRedis(append(dst, `,"redis":`...), e.Redis)
	}
	if e.Kafka != nil {
		dst = appendKafka(append(dst, `,"kafka":`...), e.Kafka)
	}
	if e.AMQP != nil {
		dst = appendAMQP(append(dst, `,"amqp":`...), e.AMQP)
	}
	if e.Postgres != nil {
		dst = appendPostgres(append(dst, `,"postgres":`...), e.Postgres)
	}
	if e.MySQL != nil {
		dst = appendMySQL(append(dst, `,"mysql":`...), e.MySQL)
	}
	if e.GraphQL != nil {
		dst = appendGraphQL(append(dst, `,"graphql":`...), e.GraphQL)
	}
	if e.WS != nil {
		dst = appendWS(append(dst, `,"websocket":`...), e.WS)
	}
	if e.TLSInfo != nil {
		dst = appendTLSInfo(append(dst, `,"tls_hello":`...), e.TLSInfo)
	}
	return append(dst, '}')
}

func appendEndpoint(dst []byte, p *entry.Endpoint) []byte {
	dst = appendString(append(dst, `{"ip":`...), p.IP)
	dst = appendInt(append(dst, `,"port":`...), int64(p.Port))
	dst = appendOptString(dst, `,"pod":`, p.Pod)
	dst = appendOptString(dst, `,"namespace":`, p.Namespace)
	dst = appendOptString(dst, `,"node":`, p.Node)
	dst = appendOptString(dst, `,"service":`, p.Service)
	dst = appendOptString(dst, `,"workload":`, p.Workload)
	dst = appendOptInt(dst, `,"pid":`, int64(p.PID))
	dst = appendOptString(dst, `,"process":`, p.Process)
	return append(dst, '}')
}

func appendBody(dst []byte, b *entry.Body) []byte {
	dst = appendInt(append(dst, `{"size":`...), b.Size)
	if b.Truncated {
		dst = append(dst, `,"truncated":true`...)
	}
	dst = appendOptString(dst, `,"encoding":`, b.Encoding)
	dst = appendOptString(dst, `,"data":`, b.Data)
	dst = appendOptString(dst, `,"decoded":`, b.Decoded)
	return append(dst, '}')
}

func appendHTTP(dst []byte, h *entry.HTTP) []byte {
	dst = appendString(append(dst, `{"version":`...), h.Version)
	if h.Stream != 0 {
		dst = appendUint(append(dst, `,"stream":`...), uint64(h.Stream))
	}
	if r := h.Request; r != nil {
		dst = appendString(append(dst, `,"request":{"method":`...), r.Method)
		dst = appendString(append(dst, `,"target":`...), r.Target)
		dst = appendOptString(dst, `,"authority":`, r.Authority)
		dst = appendOptMap(dst, `,"headers":`, r.Headers)
		dst = appendOptMap(dst, `,"trailers":`, r.Trailers)
		dst = appendBody(append(dst, `,"body":`...), &r.Body)
		dst = append(dst, '}')
	}
	if r := h.Response; r != nil {
		dst = appendInt(append(dst, `,"response":{"status":`...), int64(r.Status))
		dst = appendOptString(dst, `,"reason":`, r.Reason)
		dst = appendOptMap(dst, `,"headers":`, r.Headers)
		dst = appendOptMap(dst, `,"trailers":`, r.Trailers)
		dst = appendBody(append(dst, `,"body":`...), &r.Body)
		dst = appendOptInt(dst, `,"informational":`, int64(r.Informational))
		dst = append(dst, '}')
	}
	dst = appendOptString(dst, `,"upgrade":`, h.Upgrade)
	return append(dst, '}')
}

func appendGRPC(dst []byte, g *entry.GRPC) []byte {
	dst = appendString(append(dst, `{"service":`...), g.Service)
	dst = appendString(append(dst, `,"method":`...), g.Method)
	dst = appendInt(append(dst, `,"code":`...), int64(g.Code))
	dst = appendString(append(dst, `,"status":`...), g.Status)
	dst = appendOptString(dst, `,"message":`, g.Message)
	dst = appendInt(append(dst, `,"request_messages":`...), int64(g.RequestMessages))
	dst = appendInt(append(dst, `,"response_messages":`...), int64(g.ResponseMessages))
	if len(g.Messages) > 0 {
		dst = append(dst, `,"messages":[`...)
		for i := range g.Messages {
			if i > 0 {
				dst = append(dst, ',')
			}
			m := &g.Messages[i]
			dst = appendString(append(dst, `{"dir":`...), m.Dir)
			dst = appendInt(append(dst, `,"size":`...), int64(m.Size))
			if m.Compressed {
				dst = append(dst, `,"compressed":true`...)
			}
			dst = appendOptString(dst, `,"fields":`, m.Fields)
			if m.Truncated {
				dst = append(dst, `,"truncated":true`...)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func appendDNS(dst []byte, d *entry.DNS) []byte {
	dst = appendUint(append(dst, `{"id":`...), uint64(d.ID))
	dst = appendString(append(dst, `,"transport":`...), d.Transport)
	dst = appendString(append(dst, `,"qname":`...), d.QName)
	dst = appendString(append(dst, `,"qtype":`...), d.QType)
	dst = appendOptString(dst, `,"qclass":`, d.QClass)
	dst = appendOptString(dst, `,"rcode":`, d.RCode)
	dst = appendOptStrings(dst, `,"flags":`, d.Flags)
	dst = appendRecords(dst, `,"answers":`, d.Answers)
	dst = appendRecords(dst, `,"authority":`, d.Authority)
	return append(dst, '}')
}

func appendRecords(dst []byte, key string, rs []entry.DNSRecord) []byte {
	if len(rs) == 0 {
		return dst
	}
	dst = append(append(dst, key...), '[')
	for i := range rs {
		if i > 0 {
			dst = append(dst, ',')
		}
		r := &rs[i]
		dst = appendString(append(dst, `{"name":`...), r.Name)
		dst = appendString(append(dst, `,"type":`...), r.Type)
		dst = appendUint(append(dst, `,"ttl":`...), uint64(r.TTL))
		dst = appendString(append(dst, `,"data":`...), r.Data)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func appendConn(dst []byte, c *entry.ConnInfo) []byte {
	dst = appendString(append(dst, `{"transport":`...), c.Transport)
	dst = appendInt(append(dst, `,"client_bytes":`...), c.ClientBytes)
	dst = appendInt(append(dst, `,"server_bytes":`...), c.ServerBytes)
	dst = appendInt(append(dst, `,"client_packets":`...), c.ClientPackets)
	dst = appendInt(append(dst, `,"server_packets":`...), c.ServerPackets)
	dst = appendString(append(dst, `,"end":`...), c.End)
	return append(dst, '}')
}

func appendRedis(dst []byte, r *entry.Redis) []byte {
	dst = appendString(append(dst, `{"command":`...), r.Command)
	dst = appendOptStrings(dst, `,"args":`, r.Args)
	dst = appendOptString(dst, `,"reply":`, r.Reply)
	dst = appendOptString(dst, `,"type":`, r.Type)
	dst = appendOptString(dst, `,"channel":`, r.Channel)
	dst = appendOptInt(dst, `,"protocol":`, int64(r.Protocol))
	return append(dst, '}')
}

func appendKafka(dst []byte, k *entry.Kafka) []byte {
	dst = appendInt(append(dst, `{"api_key":`...), int64(k.APIKey))
	dst = appendString(append(dst, `,"api":`...), k.API)
	dst = appendInt(append(dst, `,"api_version":`...), int64(k.APIVersion))
	dst = appendInt(append(dst, `,"correlation_id":`...), int64(k.CorrelationID))
	dst = appendOptString(dst, `,"client_id":`, k.ClientID)
	dst = appendOptString(dst, `,"topic":`, k.Topic)
	dst = appendOptInt(dst, `,"error_code":`, int64(k.ErrorCode))
	dst = appendOptString(dst, `,"error":`, k.Error)
	dst = appendOptStrings(dst, `,"topics":`, k.Topics)
	dst = appendOptInt(dst, `,"partitions":`, int64(k.Partitions))
	dst = appendOptString(dst, `,"group_id":`, k.GroupID)
	dst = appendOptInt(dst, `,"batches":`, int64(k.Batches))
	dst = appendOptInt(dst, `,"records":`, k.Records)
	dst = appendOptInt(dst, `,"record_bytes":`, k.RecordBytes)
	dst = appendOptString(dst, `,"compression":`, k.Compression)
	return append(dst, '}')
}

func appendAMQP(dst []byte, a *entry.AMQP) []byte {
	dst = appendString(append(dst, `{"method":`...), a.Method)
	dst = appendUint(append(dst, `,"channel":`...), uint64(a.Channel))
	dst = appendOptString(dst, `,"exchange":`, a.Exchange)
	dst = appendOptString(dst, `,"routing_key":`, a.RoutingKey)
	dst = appendOptString(dst, `,"queue":`, a.Queue)
	if a.Body != nil {
		dst = appendBody(append(dst, `,"body":`...), a.Body)
	}
	dst = appendOptString(dst, `,"reply":`, a.Reply)
	dst = appendOptInt(dst, `,"reply_code":`, int64(a.ReplyCode))
	dst = appendOptString(dst, `,"reply_text":`, a.ReplyText)
	dst = appendOptString(dst, `,"consumer_tag":`, a.ConsumerTag)
	if a.DeliveryTag != 0 {
		dst = appendUint(append(dst, `,"delivery_tag":`...), a.DeliveryTag)
	}
	dst = appendOptMap(dst, `,"properties":`, a.Properties)
	return append(dst, '}')
}

func appendPostgres(dst []byte, p *entry.Postgres) []byte {
	dst = appendString(append(dst, `{"query":`...), p.Query)
	dst = appendOptString(dst, `,"command":`, p.Command)
	dst = appendOptInt(dst, `,"rows":`, p.Rows)
	dst = appendString(append(dst, `,"error":`...), p.Error)
	dst = appendOptString(dst, `,"sqlstate":`, p.SQLState)
	dst = appendOptString(dst, `,"protocol":`, p.Protocol)
	dst = appendOptString(dst, `,"statement":`, p.Statement)
	dst = appendOptInt(dst, `,"params":`, int64(p.Params))
	dst = appendOptString(dst, `,"user":`, p.User)
	dst = appendOptString(dst, `,"database":`, p.Database)
	dst = appendOptString(dst, `,"application":`, p.Application)
	return append(dst, '}')
}

func appendMySQL(dst []byte, m *entry.MySQL) []byte {
	dst = appendString(append(dst, `{"command":`...), m.Command)
	dst = appendOptString(dst, `,"query":`, m.Query)
	dst = appendOptInt(dst, `,"rows":`, m.Rows)
	dst = appendOptString(dst, `,"error":`, m.Error)
	dst = appendOptInt(dst, `,"code":`, int64(m.Code))
	dst = appendOptString(dst, `,"sqlstate":`, m.SQLState)
	dst = appendOptInt(dst, `,"affected":`, m.Affected)
	dst = appendOptInt(dst, `,"insert_id":`, m.InsertID)
	dst = appendOptInt(dst, `,"warnings":`, int64(m.Warnings))
	dst = appendOptInt(dst, `,"columns":`, int64(m.Columns))
	dst = appendOptInt(dst, `,"results":`, int64(m.Results))
	dst = appendOptInt(dst, `,"statement":`, int64(m.Statement))
	dst = appendOptInt(dst, `,"params":`, int64(m.Params))
	if m.Truncated {
		dst = append(dst, `,"truncated":true`...)
	}
	dst = appendOptString(dst, `,"user":`, m.User)
	dst = appendOptString(dst, `,"database":`, m.Database)
	dst = appendOptString(dst, `,"server_version":`, m.ServerVersion)
	return append(dst, '}')
}

func appendGraphQL(dst []byte, g *entry.GraphQL) []byte {
	dst = appendString(append(dst, `{"operation":`...), g.Operation)
	dst = appendOptString(dst, `,"name":`, g.Name)
	dst = appendOptStrings(dst, `,"errors":`, g.Errors)
	dst = appendOptInt(dst, `,"error_count":`, int64(g.ErrorCount))
	dst = appendOptStrings(dst, `,"fields":`, g.Fields)
	dst = appendOptInt(dst, `,"batch":`, int64(g.Batch))
	return append(dst, '}')
}

func appendWS(dst []byte, w *entry.WS) []byte {
	dst = appendString(append(dst, `{"opcode":`...), w.Opcode)
	dst = appendString(append(dst, `,"dir":`...), w.Dir)
	dst = appendOptInt(dst, `,"close_code":`, int64(w.CloseCode))
	dst = appendBody(append(dst, `,"payload":`...), &w.Payload)
	dst = appendOptString(dst, `,"close_reason":`, w.CloseReason)
	dst = appendOptInt(dst, `,"frames":`, int64(w.Frames))
	if w.Compressed {
		dst = append(dst, `,"compressed":true`...)
	}
	return append(dst, '}')
}

// appendTLSInfo writes an object whose fields are all optional, so the
// first one written opens it without a comma.
func appendTLSInfo(dst []byte, t *entry.TLSInfo) []byte {
	start := len(dst)
	dst = appendOptString(dst, `,"sni":`, t.SNI)
	dst = appendOptStrings(dst, `,"alpn":`, t.ALPN)
	dst = appendOptString(dst, `,"version":`, t.Version)
	dst = appendOptString(dst, `,"cipher":`, t.Cipher)
	dst = appendOptString(dst, `,"alpn_selected":`, t.ALPNSelected)
	if t.Resumed {
		dst = append(dst, `,"resumed":true`...)
	}
	dst = appendOptString(dst, `,"alert":`, t.Alert)
	if len(dst) == start {
		return append(dst, "{}"...)
	}
	dst[start] = '{'
	return append(dst, '}')
}

func appendInt(dst []byte, v int64) []byte   { return strconv.AppendInt(dst, v, 10) }
func appendUint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }
func appendBool(dst []byte, v bool) []byte   { return strconv.AppendBool(dst, v) }

func appendOptInt(dst []byte, key string, v int64) []byte {
	if v == 0 {
		return dst
	}
	return appendInt(append(dst, key...), v)
}

func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

func appendOptStrings(dst []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	dst = append(append(dst, key...), '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendOptMap writes a map with its keys sorted, as encoding/json does.
// Up to 16 pairs (most header sets) are sorted on the stack, by insertion:
// a larger array costs more to clear than it saves.
func appendOptMap(dst []byte, key string, m map[string]string) []byte {
	if len(m) == 0 {
		return dst
	}
	var buf [8]kv
	pairs := buf[:0]
	if len(m) > len(buf) {
		pairs = make([]kv, 0, len(m))
	}
	for k, v := range m {
		pairs = append(pairs, kv{k, v})
	}
	if len(pairs) <= len(buf) {
		insertionSort(pairs)
	} else {
		slices.SortFunc(pairs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	}
	dst = append(append(dst, key...), '{')
	for i := range pairs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(append(appendString(dst, pairs[i].k), ':'), pairs[i].v)
	}
	return append(dst, '}')
}

type kv struct{ k, v string }

// insertionSort sorts a few pairs by key (keys of a map are distinct).
func insertionSort(p []kv) {
	for i := 1; i < len(p); i++ {
		x := p[i]
		j := i
		for ; j > 0 && less(x.k, p[j-1].k); j-- {
			p[j] = p[j-1]
		}
		p[j] = x
	}
}

// less is a < b, deciding on the first bytes inline: header names mostly
// differ there.
func less(a, b string) bool {
	if a != "" && b != "" && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, trailing zeros trimmed). Entry times are UTC: those are
// written digit by digit, the rest by the time package.
func appendTime(dst []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	if t.Location() != time.UTC || y < 0 || y > 9999 {
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	h, mi, s := t.Clock()
	dst = append(dst, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z', '"')
}

// plain[b] is 1 for the bytes encoding/json writes as they are:
// printable ASCII other than `"`, `\`, `<`, `>`, `&`, and DEL. Bytes from
// 0x80 up start a UTF-8 sequence and take the slow path.
var plain = func() (t [256]uint8) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		if b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
			t[b] = 1
		}
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does:
// control characters and <, >, & escaped, invalid UTF-8 replaced by
// \ufffd, and U+2028, U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start, i := 0, 0
	for {
		// Eight bytes a round: eight independent loads and no branch
		// between them run several times faster than a byte a round.
		for i+8 <= len(s) {
			w := s[i : i+8]
			if plain[w[0]]&plain[w[1]]&plain[w[2]]&plain[w[3]]&plain[w[4]]&plain[w[5]]&plain[w[6]]&plain[w[7]] == 0 {
				break
			}
			i += 8
			// A plain word starts a run that may be long, as in text
			// bodies: sixteen bytes a round in vector registers (amd64).
			if len(s)-i >= 16 {
				i += plainRun(s[i:])
			}
		}
		for i < len(s) && plain[s[i]] != 0 {
			i++
		}
		if i == len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			if e := shortEscape[b]; e != 0 {
				dst = append(dst, '\\', e)
			} else {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// shortEscape[b] is the letter of b's two-byte escape (\n for a newline),
// or 0 for the bytes written as \u00XX.
var shortEscape = [utf8.RuneSelf]byte{'"': '"', '\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}
