package worker

import (
	"io"
	"sync"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// mux is the capture.Source the pipeline reads: the batches of every
// namespace's capture, in the order they were queued. Its interfaces are
// the captures attached so far (one per pod network namespace); they only
// grow, so an index stays valid for the flows that use it.
type mux struct {
	q      <-chan *batch
	tables func() *table
	cur    *batch
	i, j   int // the next of cur's packets, and of its summaries

	closeOnce sync.Once
	closed    chan struct{}
}

func newMux(q <-chan *batch, tables func() *table) *mux {
	return &mux{q: q, tables: tables, closed: make(chan struct{})}
}

// Next returns the next packet to dissect; io.EOF once the queue is closed
// and drained, or after Close.
func (m *mux) Next(p *capture.Packet) error {
	for {
		if b := m.cur; b != nil {
			for m.i < len(b.pkts) || m.j < len(b.sums) {
				if m.j < len(b.sums) && b.sumAt[m.j] <= m.i {
					*p = b.sums[m.j]
					m.j++
				} else {
					i := m.i
					m.i++
					if b.skip[i] {
						continue
					}
					*p = b.pkts[i]
				}
				p.Interface = b.iface
				return nil
			}
			b.release()
			m.cur = nil
		}
		select {
		case b, ok := <-m.q:
			if !ok {
				return io.EOF
			}
			m.cur, m.i, m.j = b, 0, 0
		case <-m.closed:
			return io.EOF
		}
	}
}

// Interfaces lists every capture interface attached so far.
func (m *mux) Interfaces() []capture.Interface {
	t := m.tables()
	out := make([]capture.Interface, len(t.ifaces))
	for i, p := range t.ifaces {
		out[i] = p.iface
	}
	return out
}

// Close makes Next return io.EOF. Batches still queued are released by
// the worker.
func (m *mux) Close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	return nil
}
