package http2

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// upgradeSettings is the client's SETTINGS payload sent in HTTP2-Settings.
func upgradeSettings() string {
	var b []byte
	for _, s := range []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 8192}, {ID: http2.SettingMaxConcurrentStreams, Val: 100}} {
		b = binary.BigEndian.AppendUint16(b, uint16(s.ID))
		b = binary.BigEndian.AppendUint32(b, s.Val)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// recordUpgrade upgrades a real h2c server from HTTP/1.1 by hand: GET
// /hello with "Upgrade: h2c", then, after the 101, the preface and a second
// request (/trailers) on stream 3.
func recordUpgrade(t testing.TB) recording {
	t.Helper()
	l := serveH2C(t)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: upgrade.test\r\nUser-Agent: hand\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: "+upgradeSettings()+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, clientPreface)
	fr := http2.NewFramer(c, br)
	must(fr.WriteSettings())
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/trailers"}, {Name: ":authority", Value: "upgrade.test"}} {
		must(enc.WriteField(f))
	}
	sent3 := false
	for ended := 0; ended < 2; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				must(fr.WriteSettingsAck())
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				must(fr.WritePing(true, f.Data))
			}
		}
		if f.Header().Flags.Has(http2.FlagDataEndStream) && (f.Header().Type == http2.FrameData || f.Header().Type == http2.FrameHeaders) {
			ended++
		}
		if !sent3 && f.Header().StreamID == 1 {
			sent3 = true
			must(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}))
		}
	}
	c.Close()
	return l.recordings(t, 1)[0]
}

// splitUpgrade cuts the HTTP/1.1 request and the 101 response off an
// upgrade recording.
func splitUpgrade(t testing.TB, rec recording) (reqHead []byte, rest recording) {
	t.Helper()
	var skip [2]int
	for d, b := range [2][]byte{rec.bytes(dissect.ClientToServer), rec.bytes(dissect.ServerToClient)} {
		i := bytes.Index(b, []byte("\r\n\r\n"))
		if i < 0 {
			t.Fatalf("direction %d: no HTTP/1.1 head", d)
		}
		skip[d] = i + 4
		if d == 0 {
			reqHead = b[:i+4]
		}
	}
	for _, c := range rec {
		n := min(skip[c.dir], len(c.data))
		skip[c.dir] -= n
		if n < len(c.data) {
			rest = append(rest, chunk{dir: c.dir, data: c.data[n:]})
		}
	}
	return reqHead, rest
}

func TestUpgrade(t *testing.T) {
	rec := recordUpgrade(t)
	head, rest := splitUpgrade(t, rec)
	// The upgrade exchange as the HTTP/1 dissector reports it.
	req := &entry.Entry{
		TS: t0.Add(-time.Millisecond), Proto: entry.ProtoHTTP, Method: "GET", Path: "/hello",
		Size: entry.Size{Request: int64(len(head))},
		HTTP: &entry.HTTP{Version: "1.1", Upgrade: "h2c", Request: &entry.HTTPRequest{
			Method: "GET", Target: "/hello",
			Headers: map[string]string{"host": "upgrade.test", "user-agent": "hand", "upgrade": "h2c",
				"connection": "Upgrade, HTTP2-Settings", "http2-settings": upgradeSettings()},
		}},
	}
	upgraded := func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser { return NewUpgraded(c, emit, req) }
	want := replay(rest, dissect.DefaultOptions(), upgraded, whole)
	var views []view
	for _, e := range byStream(want) {
		views = append(views, viewOf(e, "user-agent", "content-type"))
	}
	wantViews := []view{
		{Proto: "http2", Method: "GET", Path: "/hello", Status: "200", Stream: 1, Authority: "upgrade.test",
			ReqHeaders:  map[string]string{"user-agent": "hand"},
			RespHeaders: map[string]string{"content-type": "text/plain"},
			RespBody:    entry.Body{Size: 11, Data: "hello world"}},
		{Proto: "http2", Method: "GET", Path: "/trailers", Status: "200", Stream: 3, Authority: "upgrade.test",
			RespHeaders:  map[string]string{"content-type": "text/plain; charset=utf-8"},
			RespBody:     entry.Body{Size: 18, Data: "body with trailers"},
			RespTrailers: map[string]string{"x-checksum": "abc123"}},
	}
	if diff := cmp.Diff(wantViews, views); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if e := byStream(want)[0]; !e.TS.Equal(req.TS) || e.Size.Request != int64(len(head)) || e.Size.Response == 0 {
		t.Errorf("stream 1: ts %v size %+v", e.TS, e.Size)
	}
	for name, ch := range chunkings() {
		if diff := cmp.Diff(want, replay(rest, dissect.DefaultOptions(), upgraded, ch)); diff != "" {
			t.Errorf("%s: entries (-whole +chunked):\n%s", name, diff)
		}
	}
}
