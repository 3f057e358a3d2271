package http2

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// jsonCopier is a Recycler: it keeps each entry as JSON, so a parser that
// recycles its streams (Conn.Reuse) may reuse their memory after Emit.
type jsonCopier struct{ entries [][]byte }

func (c *jsonCopier) RecyclesEntries() {}
func (c *jsonCopier) Emit(e *entry.Entry) {
	b, err := json.Marshal(e)
	must(err)
	c.entries = append(c.entries, b)
}

// replayReused is replay for a parser feeding a Recycler.
func replayReused(rec recording, opts dissect.Options, ch chunker) [][]byte {
	var c jsonCopier
	conn := testConn(opts)
	conn.Reuse = true
	replayInto(newParser(conn, &c), rec, ch)
	return c.entries
}

// Recycled streams make the same entries as fresh ones, on real traffic
// cut every way.
func TestRecycledStreamsMatch(t *testing.T) {
	opts := dissect.DefaultOptions()
	for _, name := range seeds {
		rec := loadRecording(t, name)
		var want [][]byte
		for _, e := range replay(rec, opts, plainParser, whole) {
			b, err := json.Marshal(e)
			must(err)
			want = append(want, b)
		}
		if len(want) == 0 {
			t.Fatalf("%s: no entries", name)
		}
		for chName, ch := range chunkings() {
			got := replayReused(rec, opts, ch)
			if len(got) != len(want) {
				t.Fatalf("%s, %s: %d entries recycling streams, %d without", name, chName, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s, %s: entry %d recycling streams:\n%s\nwithout:\n%s", name, chName, i, got[i], want[i])
				}
			}
		}
	}
}

// A stream reset while one of its DATA frames is still arriving is not
// recycled: the rest of that frame must not land in the next stream.
func TestResetStreamMidFrameNotRecycled(t *testing.T) {
	f := newFrames()
	open := f.preface().settings().headers(1, false, ":method", "POST", ":path", "/upload", ":scheme", "http", ":authority", "a").take()
	frame := f.data(1, false, []byte(strings.Repeat("late", 64))).take()
	reset := f.settings().headers(1, false, ":status", "200").rst(1, http2.ErrCodeCancel).take()
	next := f.headers(3, true, ":method", "GET", ":path", "/next", ":scheme", "http", ":authority", "a").take()
	answer := f.headers(3, true, ":status", "204").take()

	for range 20 { // sync.Pool hands back what was put only most of the time
		var c jsonCopier
		conn := testConn(dissect.DefaultOptions())
		conn.Reuse = true
		p := newParser(conn, &c)
		p.Data(dissect.ClientToServer, open, t0)
		p.Data(dissect.ClientToServer, frame[:40], t0)
		p.Data(dissect.ServerToClient, reset, t0)
		p.Data(dissect.ClientToServer, frame[40:], t0)
		p.Data(dissect.ClientToServer, next, t0)
		p.Data(dissect.ServerToClient, answer, t0)
		p.End(t0)
		if len(c.entries) != 2 {
			t.Fatalf("%d entries, want 2", len(c.entries))
		}
		var e entry.Entry
		must(json.Unmarshal(c.entries[1], &e))
		if e.HTTP == nil || e.HTTP.Stream != 3 || e.HTTP.Request == nil {
			t.Fatalf("second entry is not stream 3's request: %s", c.entries[1])
		}
		if b := e.HTTP.Request.Body; b.Size != 0 || len(b.Data) != 0 {
			t.Fatalf("stream 3's request has stream 1's late bytes: %s", c.entries[1])
		}
	}
}
