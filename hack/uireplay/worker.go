package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

const (
	tick      = 10 * time.Millisecond
	maxBatch  = 256
	statsTick = time.Second
)

// workerLoop keeps a fake worker connected to the hub, redialling while
// the hub is down, until ctx is done.
func (r *replay) workerLoop(ctx context.Context) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addr, _ := r.addrs()
		w, err := hubtest.DialWorker(dctx, addr, r.pki.CACert, r.token(),
			wire.Hello{Node: node, Worker: worker, Sources: []string{entry.SourceAFPacket}, Version: "uireplay"})
		cancel()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		r.connections.Add(1)
		r.serveWorker(ctx, w)
		w.Close()
	}
}

// serveWorker sends entries and stats, and answers the hub, until the
// connection fails or ctx is done.
func (r *replay) serveWorker(ctx context.Context, w *hubtest.Worker) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Until the hub says otherwise, nobody subscribes.
	var fmu sync.Mutex
	f := filter.MustCompile(wire.FilterNone)
	setFilter := func(nf *filter.Filter) {
		fmu.Lock()
		f = nf
		fmu.Unlock()
		s := nf.String()
		r.filterExpr.Store(&s)
	}
	getFilter := func() *filter.Filter {
		fmu.Lock()
		defer fmu.Unlock()
		return f
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		r.sendLoop(ctx, w, getFilter)
	})
	for {
		env, err := w.Next(ctx)
		if err != nil {
			break
		}
		switch env.Type {
		case wire.TypeFilter:
			var m wire.Filter
			if env.Decode(&m) == nil {
				if nf, err := filter.Compile(m.Expr); err == nil {
					setFilter(nf)
				}
			}
		case wire.TypePcapRequest:
			var req wire.PcapRequest
			if env.Decode(&req) == nil {
				r.pcapRequests.Add(1)
				r.answerPcap(ctx, w, req)
			}
		}
	}
	cancel()
	wg.Wait()
}

// sendLoop replays the recordings round robin at the chosen rate, each
// entry with a fresh id and the time it is sent, its flow id kept (the
// store finds its packets by it).
func (r *replay) sendLoop(ctx context.Context, w *hubtest.Worker, f func() *filter.Filter) {
	t := time.NewTicker(tick)
	defer t.Stop()
	st := time.NewTicker(statsTick)
	defer st.Stop()
	var (
		next   = r.interleave()
		budget float64
		last   = time.Now()
		batch  []entry.Entry
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.C:
			if err := w.Send(wire.TypeStats, r.stats()); err != nil {
				return
			}
			continue
		case now := <-t.C:
			budget += float64(r.rate.Load()) * now.Sub(last).Seconds()
			last = now
			budget = min(budget, float64(r.rate.Load())) // no catch-up burst after a stall
		}
		flt := f()
		for budget >= 1 {
			budget--
			e := next()
			if flt.Match(&e) {
				batch = append(batch, e)
			}
			if len(batch) == maxBatch {
				if !r.send(w, &batch) {
					return
				}
			}
		}
		if len(batch) > 0 && !r.send(w, &batch) {
			return
		}
	}
}

func (r *replay) send(w *hubtest.Worker, batch *[]entry.Entry) bool {
	err := w.SendEntries(*batch)
	r.sent.Add(uint64(len(*batch)))
	r.batches.Add(1)
	*batch = (*batch)[:0]
	return err == nil
}

// interleave returns a generator of entries: one of each recording in
// turn, round after round, stamped now.
func (r *replay) interleave() func() entry.Entry {
	var all []entry.Entry
	for i := 0; ; i++ {
		added := false
		for _, rec := range r.recs {
			if i < len(rec.entries) {
				all = append(all, rec.entries[i])
				added = true
			}
		}
		if !added {
			break
		}
	}
	i, round := 0, 0
	return func() entry.Entry {
		e := all[i]
		e.ID = e.ID + "-r" + strconv.Itoa(round)
		e.TS = time.Now().UTC()
		if i++; i == len(all) {
			i, round = 0, round+1
		}
		return e
	}
}

func (r *replay) stats() wire.Stats {
	sent := r.sent.Load()
	return wire.Stats{
		Node: node, Worker: worker, Time: time.Now(),
		Packets: sent * 8, Bytes: sent * 4000,
		KernelDrops: r.kernelDrops.Load(), QueueDrops: r.queueDrops.Load(),
		Entries: sent, EntriesDropped: r.entriesDropped.Load(),
		Sources: len(r.recs), Targets: len(r.recs),
	}
}

// answerPcap exports the packets the request selects from the store, as
// a worker does, and sends them within the hub's credit.
func (r *replay) answerPcap(ctx context.Context, w *hubtest.Worker, req wire.PcapRequest) {
	q := store.Query{Pods: req.Pods, From: req.From, To: req.To}
	var err error
	if req.Flow != nil {
		q.Flow = &store.Flow{ID: req.Flow.ID, Transport: req.Flow.Transport}
		q.Flow.A, err = parseEnd(req.Flow.A)
		if err == nil {
			q.Flow.B, err = parseEnd(req.Flow.B)
		}
	}
	var buf bytes.Buffer
	if err == nil {
		_, err = r.store.Export(ctx, &buf, q)
	}
	if err != nil {
		w.Send(wire.TypePcapEnd, wire.PcapEnd{ID: req.ID, Error: err.Error()})
		return
	}
	if err := w.SendPcap(ctx, req, buf.Bytes(), wire.MaxPcapChunk); err != nil && !errors.Is(err, context.Canceled) {
		r.log.Warn("pcap export", "id", req.ID, "err", err)
	}
}

func parseEnd(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	return netip.ParseAddrPort(s)
}
