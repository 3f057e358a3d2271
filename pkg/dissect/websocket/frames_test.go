package websocket

import (
	"bytes"
	"compress/flate"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// frame builds one frame; a client frame is masked.
func frame(fin bool, rsv1 bool, op byte, payload []byte, masked bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	out := []byte{b0}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n < 1<<16:
		out = append(out, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, mbit|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if !masked {
		return append(out, payload...)
	}
	key := [4]byte{0x37, 0xFA, 0x21, 0x3D}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	unmask(out[start:], key, 0)
	return out
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// upgraded returns a parser as after a 101 whose extensions header is ext.
func upgraded(ext string, maxBody int, r *recorder) dissect.StreamParser {
	req := &entry.Entry{Path: "/ws", HTTP: &entry.HTTP{Response: &entry.HTTPResponse{
		Status: 101, Headers: map[string]string{"sec-websocket-extensions": ext}}}}
	return NewUpgraded(testConn(maxBody), r, req)
}

func run(p dissect.StreamParser, steps ...any) {
	dir := dissect.ClientToServer
	for _, s := range steps {
		switch s := s.(type) {
		case dissect.Dir:
			dir = s
		case []byte:
			p.Data(dir, s, t0)
		case int:
			p.Gap(dir, s)
		}
	}
	p.End(t0)
}

func summaries(es []*entry.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, summary(e))
	}
	return out
}

func TestFrames(t *testing.T) {
	c2s, s2c := dissect.ClientToServer, dissect.ServerToClient
	long := bytes.Repeat([]byte("x"), 70000)
	tests := []struct {
		name  string
		steps []any
		want  []string
	}{{
		name: "ping inside a fragmented message",
		steps: []any{c2s, frame(false, false, opText, []byte("hel"), true),
			frame(true, false, opPing, []byte("?"), true),
			frame(false, false, opContinuation, []byte("lo "), true),
			frame(true, false, opContinuation, []byte("world"), true)},
		want: []string{"PING /ws  client 1", "TEXT /ws  client 11 frames=3"},
	}, {
		name:  "64-bit length, unmasked server frame",
		steps: []any{s2c, frame(true, false, opBinary, long, false)},
		want:  []string{"BINARY /ws  server 70000 truncated"},
	}, {
		name:  "close without a code",
		steps: []any{c2s, frame(true, false, opClose, nil, true), s2c, frame(true, false, opClose, []byte{3, 0xE8}, false)},
		want:  []string{"CLOSE /ws  client 0", "CLOSE /ws 1000 server 2"},
	}, {
		name:  "message cut by the end",
		steps: []any{c2s, frame(false, false, opText, []byte("part"), true)},
		want:  []string{"TEXT /ws  client 4 error=incomplete message"},
	}, {
		name:  "message cut by a gap, direction stops",
		steps: []any{c2s, frame(false, false, opText, []byte("part"), true), 10, frame(true, false, opText, []byte("x"), true)},
		want:  []string{"TEXT /ws  client 4 error=capture gap"},
	}, {
		name:  "new message before the final fragment",
		steps: []any{s2c, frame(false, false, opText, []byte("a"), false), frame(true, false, opText, []byte("b"), false)},
		want:  []string{"TEXT /ws  server 1 error=incomplete message", "TEXT /ws  server 1"},
	}, {
		name:  "orphan continuation",
		steps: []any{s2c, frame(true, false, opContinuation, []byte("zz"), false)},
		want:  []string{"OPCODE0 /ws  server 2 error=continuation without a message"},
	}, {
		name:  "reserved opcode stops the direction",
		steps: []any{s2c, frame(true, false, 0x3, []byte("a"), false), frame(true, false, opText, []byte("b"), false)},
		want:  nil,
	}, {
		name:  "rsv1 without the extension",
		steps: []any{s2c, frame(true, true, opText, []byte("a"), false)},
		want:  nil,
	}, {
		name:  "fragmented control frame",
		steps: []any{c2s, frame(false, false, opPing, []byte("a"), true)},
		want:  nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			run(upgraded("", 16, &r), tc.steps...)
			if diff := cmp.Diff(tc.want, summaries(r.entries)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

// deflateMessages compresses msgs as one permessage-deflate sender does:
// one compressor for all (context takeover) or one each.
func deflateMessages(t *testing.T, msgs []string, takeover bool) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	var out [][]byte
	for _, m := range msgs {
		if !takeover {
			w.Reset(&buf)
		}
		w.Write([]byte(m))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		b := bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xFF, 0xFF})
		out = append(out, append([]byte(nil), b...))
		buf.Reset()
	}
	return out
}

func TestContextTakeover(t *testing.T) {
	msgs := []string{"the quick brown fox jumps over the lazy dog", "the quick brown fox jumps over the lazy dog!", "a lazy dog, the quick brown fox"}
	for _, tc := range []struct {
		ext      string
		takeover bool
	}{
		{"permessage-deflate", true},
		{"permessage-deflate; client_max_window_bits, x-other", true},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", false},
	} {
		var steps []any
		steps = append(steps, dissect.ServerToClient)
		for _, d := range deflateMessages(t, msgs, tc.takeover) {
			// Split a message in two frames: RSV1 on the first only.
			steps = append(steps, frame(false, true, opText, d[:1], false), frame(true, false, opContinuation, d[1:], false))
		}
		var r recorder
		run(upgraded(tc.ext, 1024, &r), steps...)
		var got []string
		for _, e := range r.entries {
			if e.Error != "" || e.WS.Payload.Decoded != "deflate" || !e.WS.Compressed {
				t.Errorf("%s: entry %s", tc.ext, summary(e))
			}
			got = append(got, e.WS.Payload.Data)
		}
		if diff := cmp.Diff(msgs, got); diff != "" {
			t.Errorf("%s: messages (-want +got):\n%s", tc.ext, diff)
		}
	}

	// A sender that keeps its context, with the parser told it does not:
	// the later messages refer to text it never saw.
	var steps []any
	steps = append(steps, dissect.ServerToClient)
	for _, d := range deflateMessages(t, msgs, true) {
		steps = append(steps, frame(true, true, opText, d, false))
	}
	var r recorder
	run(upgraded("permessage-deflate; server_no_context_takeover", 1024, &r), steps...)
	if len(r.entries) != 3 || r.entries[0].Error != "" || r.entries[1].Error != errInflate {
		t.Errorf("entries %q", summaries(r.entries))
	}
}

func TestParseDeflate(t *testing.T) {
	tests := map[string]deflateParams{
		"":                       {},
		"x-webkit-deflate-frame": {},
		"permessage-deflate":     {enabled: true},
		"foo, Permessage-Deflate ; server_no_context_takeover ; client_max_window_bits=10": {
			enabled: true, noContext: [2]bool{false, true}},
		"permessage-deflate; client_no_context_takeover": {enabled: true, noContext: [2]bool{true, false}},
	}
	for in, want := range tests {
		if got := parseDeflate(in); got != want {
			t.Errorf("parseDeflate(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestStats(t *testing.T) {
	var r recorder
	p := upgraded("", 16, &r)
	run(p, frame(true, false, opText, []byte("a"), true), 7, []byte("abc"))
	st := p.(dissect.StatsReporter).Stats()
	if want := (dissect.ParserStats{Entries: 1, Resyncs: 1, Skipped: 10}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}
