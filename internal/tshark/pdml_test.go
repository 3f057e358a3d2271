package tshark

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The PDML below mimics tshark 4.0's shape: geninfo/frame, tcp.stream, then
// one proto per HTTP/1 or DNS message and one http2.stream field per HTTP/2
// frame, with header names and values separated by their lengths.

func pdmlPacket(frame, tcpStream int, protos ...string) string {
	return fmt.Sprintf(`<packet><proto name="frame"><field name="frame.number" show="%d"/></proto>`+
		`<proto name="tcp"><field name="tcp.stream" show="%d"/></proto>%s</packet>`,
		frame, tcpStream, strings.Join(protos, ""))
}

func pdmlHTTP(fields ...string) string {
	var b strings.Builder
	b.WriteString(`<proto name="http"><field name="" show="line">`)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, `<field name="%s" show="%s"/>`, fields[i], fields[i+1])
	}
	b.WriteString(`</field></proto>`)
	return b.String()
}

func pdmlH2Frame(streamID int, frameType int, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<field name="http2.stream" show=""><field name="http2.type" show="%d"/>`+
		`<field name="http2.streamid" show="%d"/>`, frameType, streamID)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, `<field name="http2.header" show=""><field name="http2.header.name.length" show="1"/>`+
			`<field name="http2.header.name" show="%s"/><field name="http2.header.value.length" show="1"/>`+
			`<field name="http2.header.value" show="%s"/></field>`, headers[i], headers[i+1])
	}
	b.WriteString(`</field>`)
	return b.String()
}

func pdmlHTTP2(frames ...string) string {
	return `<proto name="http2">` + strings.Join(frames, "") + `</proto>`
}

func pdmlDNS(response, qtype, rcode string) string {
	s := `<proto name="dns"><field name="dns.flags" show="0"><field name="dns.flags.response" show="` + response + `"/>`
	if rcode != "" {
		s += `<field name="dns.flags.rcode" show="` + rcode + `"/>`
	}
	return s + `</field><field name="" show="Queries"><field name="dns.qry.type" show="` + qtype + `"/></field></proto>`
}

func summarizePDML(t *testing.T, packets ...string) Summary {
	t.Helper()
	doc := `<?xml version="1.0"?><pdml>` + strings.Join(packets, "") + `</pdml>`
	recs, err := parsePDML(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return summarize(recs)
}

func TestSummarizeHTTP1(t *testing.T) {
	got := summarizePDML(t,
		// Connection 0 starts midstream: a response to an unseen request.
		pdmlPacket(1, 0, pdmlHTTP("http.response.code", "200")),
		// Three pipelined requests in one segment; tshark links only the
		// first response.
		pdmlPacket(2, 0,
			pdmlHTTP("http.request.method", "GET", "http.request.uri", "/a"),
			pdmlHTTP("http.request.method", "HEAD", "http.request.uri", "/b"),
			pdmlHTTP("http.request.method", "GET", "http.request.uri", "/c?x=1")),
		pdmlPacket(3, 0,
			pdmlHTTP("http.response.code", "200", "http.request_in", "2"),
			pdmlHTTP("http.response.code", "200")),
		pdmlPacket(4, 0, pdmlHTTP("http.response.code", "404")),
		// Connection 1: 100 Continue is not a response of its own; a body
		// continuation has neither method nor code.
		pdmlPacket(5, 1, pdmlHTTP("http.request.method", "POST", "http.request.uri", "/up")),
		pdmlPacket(6, 1, pdmlHTTP("http.response.code", "100")),
		pdmlPacket(7, 1, pdmlHTTP("http.response.code", "201", "http.request_in", "5")),
		pdmlPacket(8, 1, pdmlHTTP("http.file_data", "xx")),
		// Connection 2: an Upgrade's 101 is a final response.
		pdmlPacket(9, 2, pdmlHTTP("http.request.method", "GET", "http.request.uri", "/")),
		pdmlPacket(10, 2, pdmlHTTP("http.response.code", "101", "http.request_in", "9")),
	)
	want := HTTPStats{Requests: 5, Responses: 6, Exchanges: map[string]int{
		"GET /a 200": 1, "HEAD /b 200": 1, "GET /c?x=1 404": 1, "POST /up 201": 1, "GET / 101": 1,
	}}
	if diff := cmp.Diff(want, got.HTTP1); diff != "" {
		t.Errorf("HTTP1 (-want +got):\n%s", diff)
	}
}

func TestSummarizeHTTP2AndGRPC(t *testing.T) {
	const headers, data = 1, 0
	got := summarizePDML(t,
		// Two requests in one segment on connection 0.
		pdmlPacket(1, 0, pdmlHTTP2(
			pdmlH2Frame(1, headers, ":method", "GET", ":path", "/x", ":scheme", "http"),
			pdmlH2Frame(3, headers, ":method", "POST", ":path", "/demo.Catalog/GetItem",
				"content-type", "application/grpc+proto"),
			pdmlH2Frame(3, data))),
		pdmlPacket(2, 0, pdmlHTTP2(
			pdmlH2Frame(1, headers, ":status", "103"),
			pdmlH2Frame(1, headers, ":status", "204"),
			pdmlH2Frame(3, headers, ":status", "200", "content-type", "application/grpc"),
			pdmlH2Frame(3, data),
			pdmlH2Frame(3, headers, "grpc-status", "5", "grpc-message", "no item"))),
		// Same stream id on another connection is another stream; a
		// trailers-only response.
		pdmlPacket(3, 1, pdmlHTTP2(
			pdmlH2Frame(1, headers, ":method", "POST", ":path", "/demo.Catalog/Nope",
				"content-type", "application/grpc"))),
		pdmlPacket(4, 1, pdmlHTTP2(
			pdmlH2Frame(1, headers, ":status", "200", "grpc-status", "12"))),
		// Stream 1 after an Upgrade: a response without request HEADERS.
		pdmlPacket(5, 2, pdmlHTTP2(pdmlH2Frame(1, headers, ":status", "200"))),
	)
	want := Summary{
		HTTP2: HTTPStats{Requests: 3, Responses: 4, Exchanges: map[string]int{
			"GET /x 204": 1, "POST /demo.Catalog/GetItem 200": 1, "POST /demo.Catalog/Nope 200": 1,
		}},
		GRPC: GRPCStats{
			Calls:    2,
			Methods:  map[string]int{"/demo.Catalog/GetItem": 1, "/demo.Catalog/Nope": 1},
			Statuses: map[string]int{"5": 1, "12": 1},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSummarizeDNS(t *testing.T) {
	got := summarizePDML(t,
		pdmlPacket(1, -1, pdmlDNS("0", "1", "")),
		pdmlPacket(2, -1, pdmlDNS("1", "1", "0")),
		// Two messages in one TCP segment.
		pdmlPacket(3, 0, pdmlDNS("0", "28", ""), pdmlDNS("0", "33", "")),
		pdmlPacket(4, 0, pdmlDNS("1", "28", "3"), pdmlDNS("1", "33", "0")),
	)
	want := DNSStats{
		Queries: 3, Responses: 3,
		QTypes: map[string]int{"A": 1, "AAAA": 1, "SRV": 1},
		RCodes: map[string]int{"NOERROR": 2, "NXDOMAIN": 1},
	}
	if diff := cmp.Diff(want, got.DNS); diff != "" {
		t.Errorf("DNS (-want +got):\n%s", diff)
	}
}

func TestParsePDMLErrors(t *testing.T) {
	if _, err := parsePDML(strings.NewReader(`<pdml><packet><proto name="http">`)); err == nil {
		t.Error("truncated PDML: want error")
	}
	recs, err := parsePDML(strings.NewReader(`<pdml></pdml>`))
	if err != nil || len(recs) != 0 {
		t.Errorf("empty PDML: got %v, %v", recs, err)
	}
}
