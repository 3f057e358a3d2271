package hub

import (
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// FuzzWorkerMessage feeds arbitrary worker messages, text and binary, to
// the hub's handling of them: it must never panic, and every entry it
// queues to a subscriber must be a valid entry envelope.
func FuzzWorkerMessage(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"entries","data":{"entries":[{"v":1,"id":"a","proto":"http","src":{"ip":"10.0.0.1","port":1},"dst":{"ip":"10.0.0.2","port":80},"http":{"version":"1.1","request":{"method":"GET","target":"/","body":{"size":0}}}}]}}`,
		`{"v":1,"type":"entries","data":{"entries":[{"id":"b","proto":"dns","dns":{"qname":"x.","answers":[{"name":"x.","type":"A","ttl":1,"data":"1.2.3.4"}]}}]},"x":1}`,
		`{"v":1,"type":"stats","data":{"node":"n","worker":"w","packets":5}}`,
		`{"v":1,"type":"pcap-end","data":{"id":"p1","error":"boom"}}`,
		`{"v":1,"type":"entries","data":{"entries":null}}`,
		`{"v":1,"type":"entries","data":[]}`,
		`{"v":9,"type":"entries"}`,
	} {
		f.Add(false, []byte(s))
	}
	f.Add(true, wire.AppendPcapChunk(nil, "p1", []byte{0x0a, 0x0d, 0x0d, 0x0a}))
	f.Add(true, []byte{1, 2, 'p'})
	f.Fuzz(func(t *testing.T, binary bool, msg []byte) {
		h, err := newServer(Options{APIAddr: ":0", WorkerAddr: ":0", Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		h.ipmap.Store(&wire.IPMap{"10.0.0.1": {Pod: "a", Namespace: "ns"}})
		sub := &subscriber{h: h, entries: make(chan []byte, 8), ctrl: make(chan outMsg, 1), done: make(chan struct{})}
		sub.filter.Store(filter.MustCompile(""))
		h.subs.Store(&[]*subscriber{sub})
		w := &workerConn{h: h, name: "w", node: "n", send: make(chan []byte, 1024),
			exports: map[string]*exportPart{}, done: make(chan struct{}), encHint: 64}
		p := newExportPart("p1", w)
		w.exports["p1"] = p
		if binary {
			w.handleChunk(msg)
		} else {
			w.handle(msg)
		}
		close(sub.entries)
		for b := range sub.entries {
			env, err := wire.Parse(b)
			if err != nil || env.Type != wire.TypeEntry {
				t.Fatalf("queued %q: %v", b, err)
			}
		}
		if len(p.items) > pcapWindow {
			t.Fatalf("%d chunks queued, over the window", len(p.items))
		}
	})
}
