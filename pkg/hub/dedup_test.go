package hub

import (
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func TestNATDedup(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	mk := func(dst string, ts time.Time, path string) *entry.Entry {
		return &entry.Entry{Proto: "http", Method: "GET", Path: path, Status: "200", TS: ts,
			Src: entry.Endpoint{IP: "10.89.1.5", Port: 40000}, Dst: entry.Endpoint{IP: dst, Port: 8080}}
	}
	d := newNATDedup()
	now := t0
	steps := []struct {
		name string
		e    *entry.Entry
		dup  bool
	}{
		{"client side, to the Service IP", mk("10.96.0.20", t0, "/a"), false},
		{"server side, to the pod, 2 ms later", mk("10.89.2.7", t0.Add(2*time.Millisecond), "/a"), true},
		{"the next request on the connection", mk("10.96.0.20", t0.Add(time.Second), "/a"), false},
		{"its server side", mk("10.89.2.7", t0.Add(time.Second+time.Millisecond), "/a"), true},
		{"same destination, same request again: a real repeat", mk("10.96.0.20", t0.Add(time.Second+5*time.Millisecond), "/a"), false},
		{"other destination but a second later: not the same exchange", mk("10.89.2.7", t0.Add(2*time.Second+300*time.Millisecond), "/a"), false},
		{"another path", mk("10.89.2.9", t0.Add(2*time.Second+300*time.Millisecond), "/b"), false},
	}
	for _, s := range steps {
		now = now.Add(10 * time.Millisecond)
		if got := d.duplicate(s.e, now); got != s.dup {
			t.Errorf("%s: duplicate = %v, want %v", s.name, got, s.dup)
		}
	}
	// Forgotten after dedupKeep.
	if d.duplicate(mk("10.89.2.99", t0.Add(2*time.Second+300*time.Millisecond), "/b"), now.Add(dedupKeep+2*time.Second)) {
		t.Error("an exchange older than dedupKeep still matched")
	}
	if len(d.seen) > 2 {
		t.Errorf("%d keys left after the sweep", len(d.seen))
	}
}
