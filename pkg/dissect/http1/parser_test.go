package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

const (
	getA    = "GET /a HTTP/1.1\r\nHost: svc\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"
	okA     = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	postB   = "POST /items?x=1 HTTP/1.1\r\nHost: svc\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"name\":\"a\"}\n"
	created = "HTTP/1.1 201 Created\r\nLocation: /items/7\r\nContent-Length: 0\r\n\r\n"
	getC    = "GET /c HTTP/1.1\r\nHost: svc\r\n\r\n"
	okC     = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
)

func httpA() *entry.HTTP {
	return &entry.HTTP{
		Version: "1.1",
		Request: &entry.HTTPRequest{Method: "GET", Target: "/a", Authority: "svc",
			Headers: hdr("host", "svc", "user-agent", "curl/8", "accept", "*/*")},
		Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
			Headers: hdr("content-type", "text/plain", "content-length", "5"), Body: text("hello")},
	}
}

func httpC() *entry.HTTP {
	return &entry.HTTP{
		Version:  "1.1",
		Request:  &entry.HTTPRequest{Method: "GET", Target: "/c", Authority: "svc", Headers: hdr("host", "svc")},
		Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-length", "2"), Body: text("ok")},
	}
}

func compress(coding, s string) string {
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zlib":
		w = zlib.NewWriter(&b)
	default:
		w, _ = flate.NewWriter(&b, flate.BestCompression)
	}
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

type parseCase struct {
	name      string
	opts      *dissect.Options
	steps     []step
	want      []*entry.Entry
	wantStats dissect.ParserStats
}

func parseCases() []parseCase {
	const (
		chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Grpc-Status\r\n\r\n" +
			"5;name=value\r\nhello\r\n7 ; x\r\n, world\r\n0\r\nGrpc-Status: 0\r\nX-Sum: abc\r\n\r\n"
		chunkedReq = "POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n"
		noContent  = "HTTP/1.1 204 No Content\r\n\r\n"
		headReq    = "HEAD /file HTTP/1.1\r\nHost: svc\r\n\r\n"
		headResp   = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: video/mp4\r\n\r\n"
		notMod     = "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n"
		expectReq  = "PUT /obj HTTP/1.1\r\nHost: s3\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
		cont       = "HTTP/1.1 100 Continue\r\n\r\n"
		hints      = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
		get10      = "GET / HTTP/1.0\r\n\r\n"
		close10    = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"
		connect    = "CONNECT db.example:443 HTTP/1.1\r\nHost: db.example:443\r\n\r\n"
		tunnelOK   = "HTTP/1.1 200 Connection Established\r\n\r\n"
		tlsBytes   = "\x16\x03\x01\x00\x2a\x01\x00\x00\x26GET / HTTP/1.1\r\n\r\n"
		wsReq      = "GET /chat HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		wsResp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
		authReq = "GET /me HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer s3cr3t\r\nCookie: a=1\r\n" +
			"Accept: text/html\r\nAccept: application/json\r\n\r\n"
		authResp = "HTTP/1.1 200 OK\r\nSet-Cookie: a=2\r\nSet-Cookie: b=3\r\nContent-Length: 0\r\n\r\n"
	)
	gz := compress("gzip", strings.Repeat("gzip body ", 20))
	gzResp := "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(len(gz)) + "\r\n\r\n" + gz
	zl := compress("zlib", "zlib-wrapped deflate")
	zlResp := "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: " + strconv.Itoa(len(zl)) + "\r\n\r\n" + zl
	raw := compress("flate", "raw deflate")
	rawResp := "HTTP/1.1 200 OK\r\nContent-Encoding: Deflate\r\nContent-Length: " + strconv.Itoa(len(raw)) + "\r\n\r\n" + raw
	big := strings.Repeat("0123456789", 10)
	bigResp := "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + big
	tooLarge := "GET /big HTTP/1.1\r\nX-Big: " + strings.Repeat("a", maxHead) + "\r\n\r\n"
	tooLargeResp := "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n"
	small := dissect.Options{MaxBody: 10, Redact: true, Source: entry.SourceFile}
	noRedact := dissect.Options{MaxBody: 1 << 10, Redact: false, Source: entry.SourceFile}

	return []parseCase{{
		name:      "keep-alive",
		steps:     []step{cs(0, getA), sc(2, okA), cs(10, postB), sc(15, created)},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			mk(0, 2, getA, okA, httpA()),
			mk(10, 15, postB, created, &entry.HTTP{
				Version: "1.1",
				Request: &entry.HTTPRequest{Method: "POST", Target: "/items?x=1", Authority: "svc",
					Headers: hdr("host", "svc", "content-type", "application/json", "content-length", "13"),
					Body:    text("{\"name\":\"a\"}\n")},
				Response: &entry.HTTPResponse{Status: 201, Reason: "Created",
					Headers: hdr("location", "/items/7", "content-length", "0")},
			}),
		},
	}, {
		name:      "chunked with extensions and trailers",
		steps:     []step{cs(0, getC), sc(1, chunked)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, getC, chunked, &entry.HTTP{
			Version: "1.1",
			Request: httpC().Request,
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
				Headers:  hdr("transfer-encoding", "chunked", "trailer", "Grpc-Status"),
				Trailers: hdr("grpc-status", "0", "x-sum", "abc"),
				Body:     text("hello, world")},
		})},
	}, {
		name:      "chunked request",
		steps:     []step{cs(0, chunkedReq), sc(1, noContent)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, chunkedReq, noContent, &entry.HTTP{
			Version: "1.1",
			Request: &entry.HTTPRequest{Method: "POST", Target: "/up", Authority: "svc",
				Headers: hdr("host", "svc", "transfer-encoding", "chunked"), Body: text("abc0123456789")},
			Response: &entry.HTTPResponse{Status: 204, Reason: "No Content", Headers: hdr()},
		})},
	}, {
		name:      "content codings",
		steps:     []step{cs(0, getC), sc(1, gzResp), cs(2, getC), sc(3, zlResp), cs(4, getC), sc(5, rawResp)},
		wantStats: dissect.ParserStats{Entries: 3},
		want: []*entry.Entry{
			mk(0, 1, getC, gzResp, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
					Headers: hdr("content-encoding", "gzip", "content-length", strconv.Itoa(len(gz))),
					Body:    entry.Body{Size: int64(len(gz)), Data: strings.Repeat("gzip body ", 20), Decoded: "gzip"}}}),
			mk(2, 3, getC, zlResp, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
					Headers: hdr("content-encoding", "deflate", "content-length", strconv.Itoa(len(zl))),
					Body:    entry.Body{Size: int64(len(zl)), Data: "zlib-wrapped deflate", Decoded: "deflate"}}}),
			mk(4, 5, getC, rawResp, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
					Headers: hdr("content-encoding", "Deflate", "content-length", strconv.Itoa(len(raw))),
					Body:    entry.Body{Size: int64(len(raw)), Data: "raw deflate", Decoded: "deflate"}}}),
		},
	}, {
		name:      "HEAD, 304 and 204 have no body",
		steps:     []step{cs(0, headReq), sc(1, headResp), cs(2, getC), sc(3, notMod), cs(4, getC), sc(5, noContent), cs(6, getA), sc(7, okA)},
		wantStats: dissect.ParserStats{Entries: 4},
		want: []*entry.Entry{
			mk(0, 1, headReq, headResp, &entry.HTTP{Version: "1.1",
				Request: &entry.HTTPRequest{Method: "HEAD", Target: "/file", Authority: "svc", Headers: hdr("host", "svc")},
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
					Headers: hdr("content-length", "1000", "content-type", "video/mp4")}}),
			mk(2, 3, getC, notMod, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 304, Reason: "Not Modified",
					Headers: hdr("etag", `"v1"`, "content-length", "42")}}),
			mk(4, 5, getC, noContent, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 204, Reason: "No Content", Headers: hdr()}}),
			mk(6, 7, getA, okA, httpA()),
		},
	}, {
		name:      "100-continue and 103 early hints",
		steps:     []step{cs(0, expectReq), sc(1, cont), cs(2, "data"), sc(3, hints+okC)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 3, expectReq+"data", cont+hints+okC, &entry.HTTP{Version: "1.1",
			Request: &entry.HTTPRequest{Method: "PUT", Target: "/obj", Authority: "s3",
				Headers: hdr("host", "s3", "content-length", "4", "expect", "100-continue"), Body: text("data")},
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-length", "2"),
				Body: text("ok"), Informational: 2},
		})},
	}, {
		name:      "close-delimited body ends with the connection",
		steps:     []step{cs(0, get10), sc(1, close10), sc(2, "</html>")},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 2, get10, close10+"</html>", &entry.HTTP{Version: "1.0",
			Request: &entry.HTTPRequest{Method: "GET", Target: "/", Headers: hdr()},
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-type", "text/html"),
				Body: text("<html></html>")},
		})},
	}, {
		name: "mid-stream start inside bodies",
		steps: []step{
			sc(0, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), // answers a request not captured
			cs(1, "ody of a request that began earlier\r\nwith lines\r\n"+getA),
			sc(2, "tail of a body\r\n"+okA),
		},
		wantStats: dissect.ParserStats{Entries: 1, Dropped: 1, Resyncs: 2,
			Skipped: int64(len("ody of a request that began earlier\r\nwith lines\r\n") + len("tail of a body\r\n"))},
		want: []*entry.Entry{mk(1, 2, getA, okA, httpA())},
	}, {
		name: "client gap: resync, and the response of the lost request is dropped",
		steps: []step{cs(0, getA), sc(1, okA), cs(2, postB[:20]), gapOf(dissect.ClientToServer, 40), cs(3, postB[60:]),
			sc(4, created), cs(5, getC), sc(6, okC)},
		wantStats: dissect.ParserStats{Entries: 2, Dropped: 1, Resyncs: 1, Skipped: int64(40 + len(postB[60:]))},
		want:      []*entry.Entry{mk(0, 1, getA, okA, httpA()), mk(5, 6, getC, okC, httpC())},
	}, {
		name: "server gap inside a body of known length is stepped over",
		steps: []step{cs(0, getC), sc(1, bigResp[:len(bigResp)-90]), gapOf(dissect.ServerToClient, 80),
			sc(2, bigResp[len(bigResp)-10:]), cs(3, getA), sc(4, okA)},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			withErr(mk(0, 2, getC, bigResp, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-length", "100"),
					Body: entry.Body{Size: 100, Truncated: true, Data: big[:10]}}}), errGap),
			mk(3, 4, getA, okA, httpA()),
		},
	}, {
		name: "server gap across a head: waiting requests are given up",
		steps: []step{cs(0, getC), sc(1, okC[:10]), gapOf(dissect.ServerToClient, 5),
			sc(2, "ong garbage\r\n"), cs(3, getA), sc(4, okA)},
		wantStats: dissect.ParserStats{Entries: 2, Resyncs: 1, Skipped: 5 + int64(len("ong garbage\r\n"))},
		want: []*entry.Entry{
			withErr(mk(0, 0, getC, "", &entry.HTTP{Version: "1.1", Request: httpC().Request}), errGap),
			mk(3, 4, getA, okA, httpA()),
		},
	}, {
		name:      "CONNECT tunnel is not parsed",
		steps:     []step{cs(0, connect+tlsBytes), sc(1, tunnelOK+"\x16\x03\x03HTTP/1.1 200 OK\r\n\r\n"), cs(2, getA), sc(3, okA)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, connect, tunnelOK, &entry.HTTP{Version: "1.1",
			Request:  &entry.HTTPRequest{Method: "CONNECT", Target: "db.example:443", Authority: "db.example:443", Headers: hdr("host", "db.example:443")},
			Response: &entry.HTTPResponse{Status: 200, Reason: "Connection Established", Headers: hdr()},
		})},
	}, {
		name:      "CONNECT refused: HTTP goes on",
		steps:     []step{cs(0, connect), sc(1, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"), cs(2, getA), sc(3, okA)},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			mk(0, 1, connect, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", &entry.HTTP{Version: "1.1",
				Request:  &entry.HTTPRequest{Method: "CONNECT", Target: "db.example:443", Authority: "db.example:443", Headers: hdr("host", "db.example:443")},
				Response: &entry.HTTPResponse{Status: 407, Reason: "Proxy Authentication Required", Headers: hdr("content-length", "0")},
			}),
			mk(2, 3, getA, okA, httpA()),
		},
	}, {
		name:      "Upgrade refused: held bytes are parsed as HTTP",
		steps:     []step{cs(0, wsReq+getA), sc(1, okC+okA)},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			mk(0, 1, wsReq, okC, &entry.HTTP{Version: "1.1",
				Request: &entry.HTTPRequest{Method: "GET", Target: "/chat", Authority: "svc",
					Headers: hdr("host", "svc", "upgrade", "websocket", "connection", "Upgrade",
						"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version", "13")},
				Response: httpC().Response}),
			mk(0, 1, getA, okA, httpA()),
		},
	}, {
		name:      "Upgrade websocket: the rest is not HTTP",
		steps:     []step{cs(0, wsReq), sc(1, wsResp+"\x81\x05hello"), cs(2, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"+getA)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, wsReq, wsResp, &entry.HTTP{Version: "1.1", Upgrade: "websocket",
			Request: &entry.HTTPRequest{Method: "GET", Target: "/chat", Authority: "svc",
				Headers: hdr("host", "svc", "upgrade", "websocket", "connection", "Upgrade",
					"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version", "13")},
			Response: &entry.HTTPResponse{Status: 101, Reason: "Switching Protocols",
				Headers: hdr("upgrade", "websocket", "connection", "Upgrade", "sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")},
		})},
	}, {
		name:      "redaction on",
		steps:     []step{cs(0, authReq), sc(1, authResp)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, authReq, authResp, &entry.HTTP{Version: "1.1",
			Request: &entry.HTTPRequest{Method: "GET", Target: "/me", Authority: "api",
				Headers: hdr("host", "api", "authorization", entry.Redacted, "cookie", entry.Redacted,
					"accept", "text/html, application/json")},
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
				Headers: hdr("set-cookie", entry.Redacted, "content-length", "0")},
		})},
	}, {
		name:      "redaction off",
		opts:      &noRedact,
		steps:     []step{cs(0, authReq), sc(1, authResp)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, authReq, authResp, &entry.HTTP{Version: "1.1",
			Request: &entry.HTTPRequest{Method: "GET", Target: "/me", Authority: "api",
				Headers: hdr("host", "api", "authorization", "Bearer s3cr3t", "cookie", "a=1",
					"accept", "text/html, application/json")},
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
				Headers: hdr("set-cookie", "a=2, b=3", "content-length", "0")},
		})},
	}, {
		name:      "body truncated at MaxBody with its true size",
		opts:      &small,
		steps:     []step{cs(0, getC), sc(1, bigResp), cs(2, getC), sc(3, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\x00\x01\x02\xff")},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			mk(0, 1, getC, bigResp, &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-length", "100"),
					Body: entry.Body{Size: 100, Truncated: true, Data: big[:10]}}}),
			mk(2, 3, getC, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\x00\x01\x02\xff", &entry.HTTP{Version: "1.1", Request: httpC().Request,
				Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-length", "4"),
					Body: entry.Body{Size: 4, Encoding: "base64", Data: "AAEC/w=="}}}),
		},
	}, {
		name:      "request with no response",
		steps:     []step{cs(0, getA), sc(1, okA), cs(2, getC)},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			mk(0, 1, getA, okA, httpA()),
			withErr(mk(2, 0, getC, "", &entry.HTTP{Version: "1.1", Request: httpC().Request}), errNoResponse),
		},
	}, {
		name:      "header too large",
		steps:     []step{cs(0, tooLarge+getC), sc(1, tooLargeResp+okC)},
		wantStats: dissect.ParserStats{Entries: 2, Resyncs: 1, Skipped: int64(len(tooLarge) - maxHead)},
		want: []*entry.Entry{
			withErr(mk(0, 1, tooLarge[:maxHead], tooLargeResp, &entry.HTTP{Version: "1.1",
				Request: &entry.HTTPRequest{Method: "GET", Target: "/big"},
				Response: &entry.HTTPResponse{Status: 431, Reason: "Request Header Fields Too Large",
					Headers: hdr("content-length", "0")}}), errHeadTooLarge),
			mk(0, 1, getC, okC, httpC()),
		},
	}, {
		name:      "bare LF line ends and blank lines between messages",
		steps:     []step{cs(0, "GET /lf HTTP/1.1\nHost: svc\n\n"), sc(1, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"), cs(2, "\r\n"+getC), sc(3, okC)},
		wantStats: dissect.ParserStats{Entries: 2},
		want: []*entry.Entry{
			mk(0, 1, "GET /lf HTTP/1.1\nHost: svc\n\n", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", &entry.HTTP{Version: "1.1",
				Request:  &entry.HTTPRequest{Method: "GET", Target: "/lf", Authority: "svc", Headers: hdr("host", "svc")},
				Response: httpC().Response}),
			mk(2, 3, getC, okC, httpC()),
		},
	}, {
		name: "early response while the request body is still sent",
		steps: []step{cs(0, "POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
			sc(1, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"), cs(2, "defghij")},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, "POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\nabcdefghij",
			"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", &entry.HTTP{Version: "1.1",
				Request:  &entry.HTTPRequest{Method: "POST", Target: "/u", Headers: hdr("content-length", "10"), Body: text("abcdefghij")},
				Response: &entry.HTTPResponse{Status: 413, Reason: "Payload Too Large", Headers: hdr("content-length", "0")},
			})},
	}, {
		name: "invalid content-length: the request is reported, the client resyncs",
		steps: []step{cs(0, "POST /x HTTP/1.1\r\nContent-Length: 12a\r\n\r\n"), sc(1, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
			cs(2, getC), sc(3, okC)},
		wantStats: dissect.ParserStats{Entries: 2, Resyncs: 1},
		want: []*entry.Entry{
			withErr(mk(0, 1, "POST /x HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", &entry.HTTP{Version: "1.1",
				Request:  &entry.HTTPRequest{Method: "POST", Target: "/x", Headers: hdr("content-length", "12a")},
				Response: &entry.HTTPResponse{Status: 400, Reason: "Bad Request", Headers: hdr("content-length", "0")},
			}), errBadLength),
			mk(2, 3, getC, okC, httpC()),
		},
	}, {
		name:      "absolute-form target gives the authority",
		steps:     []step{cs(0, "GET http://user@proxy.example:3128/p?q HTTP/1.1\r\n\r\n"), sc(1, okC)},
		wantStats: dissect.ParserStats{Entries: 1},
		want: []*entry.Entry{mk(0, 1, "GET http://user@proxy.example:3128/p?q HTTP/1.1\r\n\r\n", okC, &entry.HTTP{Version: "1.1",
			Request:  &entry.HTTPRequest{Method: "GET", Target: "http://user@proxy.example:3128/p?q", Authority: "proxy.example:3128", Headers: hdr()},
			Response: httpC().Response,
		})},
	}}
}

// TestParse feeds every case whole, one byte at a time and in random
// chunks: the entries must not depend on how the bytes were split.
func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		opts := dissect.Options{MaxBody: 1 << 10, Redact: true, Source: entry.SourceFile}
		if tc.opts != nil {
			opts = *tc.opts
		}
		for name, ch := range chunkings() {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				got, stats := run(tc.steps, opts, ch, nil)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("entries (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantStats, stats); diff != "" {
					t.Errorf("stats (-want +got):\n%s", diff)
				}
			})
		}
	}
}
