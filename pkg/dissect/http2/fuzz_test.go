package http2

import (
	"flag"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var update = flag.Bool("update", false, "rewrite the recordings under testdata")

// seeds are recordings of real connections, kept small for fuzzing.
var seeds = []string{"grpc.rec", "h2c.rec", "upgrade.rec"}

// TestSeeds rewrites the seed recordings with -update, and checks that the
// stored ones still parse into entries.
func TestSeeds(t *testing.T) {
	if *update {
		h2c := recordH2C(t)
		// Keep the heads, not the 100 KiB body: at most 16 KiB each way.
		var small recording
		var n [2]int
		for _, c := range h2c {
			k := min(len(c.data), 16<<10-n[c.dir])
			n[c.dir] += k
			if k > 0 {
				small = append(small, chunk{dir: c.dir, data: c.data[:k]})
			}
		}
		_, up := splitUpgrade(t, recordUpgrade(t))
		for name, rec := range map[string]recording{"grpc.rec": recordGRPC(t), "h2c.rec": small, "upgrade.rec": up} {
			if err := os.WriteFile("testdata/"+name, encodeRecording(rec), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range seeds {
		rec := loadRecording(t, name)
		if got := replay(rec, dissect.DefaultOptions(), plainParser, whole); len(got) < 2 {
			t.Errorf("%s: %d entries", name, len(got))
		}
	}
}

// FuzzHTTP2 feeds arbitrary bytes both ways, split in arbitrary chunks,
// with gaps, to a parser that starts as a connection start, an upgrade, or
// mid-connection. It must not panic, and what it holds and emits must stay
// within its bounds.
func FuzzHTTP2(f *testing.F) {
	for _, name := range seeds {
		rec := loadRecording(f, name)
		cli, srv := rec.bytes(dissect.ClientToServer), rec.bytes(dissect.ServerToClient)
		f.Add(cli, srv, uint8(0), uint16(0))
		f.Add(cli, srv, uint8(7), uint16(0))
		f.Add(cli, srv, uint8(0x21), uint16(0))
		f.Add(cli[min(len(cli), 100):], srv[min(len(srv), 57):], uint8(13), uint16(0))
		f.Add(cli, srv, uint8(0x85), uint16(333))
	}
	f.Fuzz(func(t *testing.T, cli, srv []byte, mode uint8, gapAt uint16) {
		opts := dissect.DefaultOptions()
		opts.MaxBody = 1000
		var c collector
		var p *parser
		if mode&0x20 != 0 {
			req := &entry.Entry{Method: "GET", Path: "/", HTTP: &entry.HTTP{Request: &entry.HTTPRequest{
				Method: "GET", Target: "/", Headers: map[string]string{"http2-settings": "AAEAACAA"}}}}
			p = NewUpgraded(testConn(opts), &c, req).(*parser)
		} else {
			p = newParser(testConn(opts), &c)
		}
		size := int(mode&0x1f) + 1
		sent := 0
		for round := 0; len(cli)+len(srv) > 0; round++ {
			for d, b := range []*[]byte{&cli, &srv} {
				n := min(size, len(*b))
				if n == 0 {
					continue
				}
				p.Data(dissect.Dir(d), (*b)[:n], t0)
				*b = (*b)[n:]
				sent += n
				if mode&0x80 != 0 && sent >= int(gapAt) && gapAt > 0 {
					p.Gap(dissect.Dir(d), int(gapAt)%5000+1)
					gapAt = 0
				}
			}
			if round%16 == 0 {
				checkBounds(t, p)
			}
		}
		checkBounds(t, p)
		p.End(t0)
		for _, e := range c.entries {
			checkEntry(t, e, opts)
		}
	})
}

func checkBounds(t *testing.T, p *parser) {
	if len(p.streams) > maxStreams {
		t.Fatalf("%d streams", len(p.streams))
	}
	for _, h := range p.halves {
		if len(h.rs) > maxResync || len(h.blk.buf) > maxHeaderBlock || len(h.ctrl) > maxCtrl {
			t.Fatalf("buffers: resync %d block %d ctrl %d", len(h.rs), len(h.blk.buf), len(h.ctrl))
		}
	}
	for _, s := range p.streams {
		for d := range s.body {
			if len(s.body[d].keep) > p.opts.MaxBody || len(s.msgs[d].keep) > maxMessageKeep ||
				s.msgs[d].kept > maxMessagesKept || len(s.msgs[d].web) > maxWebTrailers {
				t.Fatalf("stream %d keeps too much", s.id)
			}
		}
	}
}

func checkEntry(t *testing.T, e *entry.Entry, opts dissect.Options) {
	if e.HTTP == nil || e.HTTP.Version != "2" {
		t.Fatalf("entry without HTTP/2: %+v", e)
	}
	for _, b := range []*entry.Body{reqBody(e), respBody(e)} {
		if b != nil && (len(b.Data) > 4*opts.MaxBody/3+4 || b.Encoding == "" && !utf8.ValidString(b.Data)) {
			t.Fatalf("body: %+v", b)
		}
	}
	if g := e.GRPC; g != nil {
		if len(g.Messages) > 2*maxMessagesKept {
			t.Fatalf("%d messages", len(g.Messages))
		}
		for _, m := range g.Messages {
			if len(m.Fields) > maxFieldsText {
				t.Fatalf("fields: %d bytes", len(m.Fields))
			}
		}
	}
}

func reqBody(e *entry.Entry) *entry.Body {
	if e.HTTP.Request == nil {
		return nil
	}
	return &e.HTTP.Request.Body
}

func respBody(e *entry.Entry) *entry.Body {
	if e.HTTP.Response == nil {
		return nil
	}
	return &e.HTTP.Response.Body
}
