package tshark

import (
	"context"
	"sort"
	"strconv"
	"strings"
)

// Summary counts the L7 messages in a capture. tshark fills it from the
// capture (HTTPSummary); hack/trafficgen fills the same type from its own
// clients' logs (testdata/*.expected.json), so the two compare directly.
type Summary struct {
	HTTP1 HTTPStats `json:"http1"`
	HTTP2 HTTPStats `json:"http2"` // every HTTP/2 stream, gRPC included
	GRPC  GRPCStats `json:"grpc"`
	DNS   DNSStats  `json:"dns"`
}

// HTTPStats counts HTTP requests and responses. For HTTP/2 each counts
// streams: a stream whose request HEADERS were seen is a request, one whose
// final (non-1xx) response HEADERS were seen is a response.
type HTTPStats struct {
	Requests  int `json:"requests"`
	Responses int `json:"responses"`
	// Exchanges counts the paired request/responses by ExchangeKey.
	Exchanges map[string]int `json:"exchanges,omitempty"`
}

// GRPCStats counts gRPC calls: HTTP/2 streams whose request content-type is
// application/grpc*.
type GRPCStats struct {
	Calls int `json:"calls"`
	// Methods counts calls by :path, e.g. "/demo.Catalog/GetItem".
	Methods map[string]int `json:"methods,omitempty"`
	// Statuses counts grpc-status values ("0", "5", ...) of the streams
	// that carried one, in trailers or a trailers-only response.
	Statuses map[string]int `json:"statuses,omitempty"`
}

// DNSStats counts DNS messages over UDP and TCP.
type DNSStats struct {
	Queries   int            `json:"queries"`
	Responses int            `json:"responses"`
	QTypes    map[string]int `json:"qtypes,omitempty"` // of queries, by QTypeName
	RCodes    map[string]int `json:"rcodes,omitempty"` // of responses, by RCodeName
}

// ExchangeKey is the key of HTTPStats.Exchanges: "GET /api/items 200".
// target is the request target as sent (path and query).
func ExchangeKey(method, target string, status int) string {
	return method + " " + target + " " + strconv.Itoa(status)
}

// Add adds o's counts to s.
func (s *Summary) Add(o Summary) {
	s.HTTP1.add(o.HTTP1)
	s.HTTP2.add(o.HTTP2)
	s.GRPC.Calls += o.GRPC.Calls
	s.GRPC.Methods = addCounts(s.GRPC.Methods, o.GRPC.Methods)
	s.GRPC.Statuses = addCounts(s.GRPC.Statuses, o.GRPC.Statuses)
	s.DNS.Queries += o.DNS.Queries
	s.DNS.Responses += o.DNS.Responses
	s.DNS.QTypes = addCounts(s.DNS.QTypes, o.DNS.QTypes)
	s.DNS.RCodes = addCounts(s.DNS.RCodes, o.DNS.RCodes)
}

func (h *HTTPStats) add(o HTTPStats) {
	h.Requests += o.Requests
	h.Responses += o.Responses
	h.Exchanges = addCounts(h.Exchanges, o.Exchanges)
}

func addCounts(dst, src map[string]int) map[string]int {
	for k, v := range src {
		if dst == nil {
			dst = make(map[string]int)
		}
		dst[k] += v
	}
	return dst
}

func inc(m *map[string]int, key string) {
	if *m == nil {
		*m = make(map[string]int)
	}
	(*m)[key]++
}

// HTTPSummary is Default.Summarize: the HTTP/1, HTTP/2, gRPC and DNS counts
// of file.
func HTTPSummary(ctx context.Context, file string) (Summary, error) {
	return Default.Summarize(ctx, file)
}

// Summarize counts the HTTP/1, HTTP/2, gRPC and DNS messages in file as
// tshark dissects them.
func (r *Runner) Summarize(ctx context.Context, file string) (Summary, error) {
	recs, err := r.records(ctx, file, "http || http2 || dns")
	if err != nil {
		return Summary{}, err
	}
	return summarize(recs), nil
}

// summarize counts records in capture order.
func summarize(recs []record) Summary {
	var s Summary
	var h1 http1Pairer
	h2 := make(map[h2Key]*h2Stream)
	var h2Order []h2Key
	for i := range recs {
		rec := &recs[i]
		switch rec.kind {
		case "http":
			h1.add(&s.HTTP1, rec)
		case "http2":
			if k, ok := addHTTP2(h2, rec); ok {
				h2Order = append(h2Order, k)
			}
		case "dns":
			addDNS(&s.DNS, rec)
		}
	}
	for _, k := range h2Order {
		h2[k].count(&s)
	}
	return s
}

// http1Pairer pairs HTTP/1 responses with their requests. tshark's
// http.request_in links only the first of several pipelined requests, so
// each TCP connection keeps a FIFO of unanswered requests (HTTP/1.1 answers
// in order): a response takes the request request_in names, or else the
// oldest one. A response whose request came before the capture started has
// an empty FIFO and stays unpaired.
type http1Pairer struct {
	pending map[int][]h1Request // by tcp.stream
}

type h1Request struct {
	frame int
	key   string // "METHOD TARGET"
}

func (p *http1Pairer) add(st *HTTPStats, rec *record) {
	if p.pending == nil {
		p.pending = make(map[int][]h1Request)
	}
	if method, ok := rec.first("http.request.method"); ok {
		uri, _ := rec.first("http.request.uri")
		st.Requests++
		p.pending[rec.tcpStream] = append(p.pending[rec.tcpStream], h1Request{rec.frame, method + " " + uri})
		return
	}
	code, ok := rec.first("http.response.code")
	if !ok {
		return // body continuation seen without its headers (midstream)
	}
	// 100 Continue and the like precede the real response; 101 is final.
	if strings.HasPrefix(code, "1") && code != "101" {
		return
	}
	st.Responses++
	queue := p.pending[rec.tcpStream]
	if len(queue) == 0 {
		return
	}
	i := 0
	if in, ok := rec.first("http.request_in"); ok {
		frame, _ := strconv.Atoi(in)
		for j, r := range queue {
			if r.frame == frame {
				i = j
				break
			}
		}
	}
	inc(&st.Exchanges, queue[i].key+" "+code)
	p.pending[rec.tcpStream] = append(queue[:i], queue[i+1:]...)
}

type h2Key struct{ tcpStream, streamID int }

// h2Stream is what tshark showed of one HTTP/2 stream.
type h2Stream struct {
	method, path, contentType string
	status                    string
	grpcStatus                string
}

// h2FrameHeaders is the HTTP/2 frame type of HEADERS.
const h2FrameHeaders = "1"

// addHTTP2 folds one HTTP/2 frame into its stream, and reports the key of a
// stream seen for the first time.
func addHTTP2(streams map[h2Key]*h2Stream, rec *record) (h2Key, bool) {
	if t, _ := rec.first("http2.type"); t != h2FrameHeaders {
		return h2Key{}, false
	}
	id, _ := rec.first("http2.streamid")
	k := h2Key{tcpStream: rec.tcpStream}
	k.streamID, _ = strconv.Atoi(id)
	st, seen := streams[k]
	if !seen {
		st = &h2Stream{}
		streams[k] = st
	}
	var method, path, status, ctype string
	for _, h := range rec.headers() {
		switch h[0] {
		case ":method":
			method = h[1]
		case ":path":
			path = h[1]
		case ":status":
			status = h[1]
		case "content-type":
			ctype = h[1]
		case "grpc-status":
			st.grpcStatus = h[1]
		}
	}
	if method != "" {
		st.method, st.path, st.contentType = method, path, ctype
	}
	// Interim 1xx responses precede the final one.
	if status != "" && !strings.HasPrefix(status, "1") && st.status == "" {
		st.status = status
	}
	return k, !seen
}

func (st *h2Stream) count(s *Summary) {
	if st.method != "" {
		s.HTTP2.Requests++
	}
	if st.status != "" {
		s.HTTP2.Responses++
	}
	if st.method != "" && st.status != "" {
		inc(&s.HTTP2.Exchanges, st.method+" "+st.path+" "+st.status)
	}
	if st.method != "" && strings.HasPrefix(st.contentType, "application/grpc") {
		s.GRPC.Calls++
		inc(&s.GRPC.Methods, st.path)
	}
	if st.grpcStatus != "" {
		inc(&s.GRPC.Statuses, st.grpcStatus)
	}
}

func addDNS(st *DNSStats, rec *record) {
	resp, _ := rec.first("dns.flags.response")
	switch resp {
	case "0":
		st.Queries++
		if t, ok := rec.first("dns.qry.type"); ok {
			n, _ := strconv.Atoi(t)
			inc(&st.QTypes, QTypeName(uint16(n)))
		}
	case "1":
		st.Responses++
		code, _ := rec.first("dns.flags.rcode")
		n, _ := strconv.Atoi(code)
		inc(&st.RCodes, RCodeName(n))
	}
}

var qtypeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT",
	28: "AAAA", 33: "SRV", 35: "NAPTR", 41: "OPT", 64: "SVCB", 65: "HTTPS",
	252: "AXFR", 255: "ANY", 257: "CAA",
}

// QTypeName names a DNS query type as dig does ("A", "AAAA", "TYPE99").
func QTypeName(t uint16) string {
	if n, ok := qtypeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}

var rcodeNames = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}

// RCodeName names a DNS response code as dig does ("NOERROR", "NXDOMAIN").
func RCodeName(c int) string {
	if c >= 0 && c < len(rcodeNames) {
		return rcodeNames[c]
	}
	return "RCODE" + strconv.Itoa(c)
}

// SortedKeys returns m's keys in order, for stable test output.
func SortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
