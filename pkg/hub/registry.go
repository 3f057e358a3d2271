package hub

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// registry is the state only the registry loop touches: who is connected,
// the filter union pushed to workers, and the targets.
type registry struct {
	h       *server
	subs    map[*subscriber]struct{}
	workers map[string]*workerConn // by worker name
	union   string                 // last pushed to workers
	targets wire.Targets           // IPMap normalized
	follows map[*export]struct{}   // follow exports, which take workers that connect later
}

// do runs fn in the registry loop and waits for it. It returns false,
// without running fn, once the loop has stopped.
func (h *server) do(fn func(*registry)) bool {
	done := make(chan struct{})
	select {
	case h.ops <- func(r *registry) { fn(r); close(done) }:
		<-done
		return true
	case <-h.stopped:
		return false
	}
}

// registryLoop owns the registry until ctx is done, then closes every
// connection.
func (h *server) registryLoop(ctx context.Context) {
	r := &registry{
		h:       h,
		subs:    map[*subscriber]struct{}{},
		workers: map[string]*workerConn{},
		union:   wire.FilterNone,
		follows: map[*export]struct{}{},
	}
	tick := time.NewTicker(h.opts.StatsInterval)
	defer tick.Stop()
	for {
		select {
		case fn := <-h.ops:
			fn(r)
		case <-tick.C:
			r.broadcastStats()
		case <-ctx.Done():
			for s := range r.subs {
				s.close("hub stopping")
			}
			for _, w := range r.workers {
				w.close("hub stopping")
			}
			close(h.stopped)
			return
		}
	}
}

// addSubscriber registers s; false when the hub is full.
func (r *registry) addSubscriber(s *subscriber) bool {
	if len(r.subs) >= r.h.opts.MaxSubscribers {
		return false
	}
	r.subs[s] = struct{}{}
	r.publish()
	return true
}

func (r *registry) removeSubscriber(s *subscriber) {
	if _, ok := r.subs[s]; !ok {
		return
	}
	delete(r.subs, s)
	r.publish()
}

// publish swaps in a new snapshot of the subscribers, then pushes the
// union of their filters: entries a worker sends under the new union
// find the new snapshot in place.
func (r *registry) publish() {
	snap := make([]*subscriber, 0, len(r.subs))
	for s := range r.subs {
		snap = append(snap, s)
	}
	slices.SortFunc(snap, func(a, b *subscriber) int { return cmp.Compare(a.id, b.id) })
	r.h.subs.Store(&snap)
	r.pushFilter()
}

// pushFilter sends the union of the subscribers' filters to every worker
// when it changed.
func (r *registry) pushFilter() {
	u := r.unionFilter()
	if u == r.union {
		return
	}
	r.union = u
	r.h.log.Debug("filter union", "expr", u)
	for _, w := range r.workers {
		w.sendFilter(u)
	}
}

// unionFilter is the OR of every subscriber's filter, "false" when no one
// subscribes. Expressions are sorted so that the same set gives the same
// union.
func (r *registry) unionFilter() string {
	if len(r.subs) == 0 {
		return wire.FilterNone
	}
	exprs := make([]string, 0, len(r.subs))
	for s := range r.subs {
		exprs = append(exprs, s.filter.Load().String())
	}
	slices.Sort(exprs)
	return filter.Union(exprs...)
}

// addWorker registers w, replacing a connection of the same worker name
// (a worker that reconnected before its old connection timed out), and
// sends it the targets of its node and the filter.
func (r *registry) addWorker(w *workerConn) bool {
	old, replacing := r.workers[w.name]
	if !replacing && len(r.workers) >= r.h.opts.MaxWorkers {
		return false
	}
	if replacing {
		old.close("replaced by a new connection")
	}
	r.workers[w.name] = w
	r.publishWorkers()
	w.sendTargets(r.targetsFor(w.node))
	w.sendFilter(r.union)
	for ex := range r.follows {
		if nodes, all := r.nodesOf(ex.req.Pods); all || nodes[w.node] {
			ex.join(w)
		}
	}
	return true
}

func (r *registry) removeWorker(w *workerConn) {
	if r.workers[w.name] == w {
		delete(r.workers, w.name)
		r.publishWorkers()
	}
}

// publishWorkers swaps in a new snapshot of the workers, for /metrics.
func (r *registry) publishWorkers() {
	snap := make([]*workerConn, 0, len(r.workers))
	for _, w := range r.workers {
		snap = append(snap, w)
	}
	slices.SortFunc(snap, func(a, b *workerConn) int { return strings.Compare(a.name, b.name) })
	r.h.workers.Store(&snap)
}

// setTargets replaces the targets and sends each worker those of its node.
func (r *registry) setTargets(t wire.Targets) {
	r.targets = t
	for _, w := range r.workers {
		w.sendTargets(r.targetsFor(w.node))
	}
}

// targetsFor returns the targets on node (and those of no known node),
// with the whole IP map.
func (r *registry) targetsFor(node string) wire.Targets {
	out := wire.Targets{Targets: []wire.Target{}, IPMap: r.targets.IPMap}
	for _, t := range r.targets.Targets {
		if t.Node == "" || t.Node == node {
			out.Targets = append(out.Targets, t)
		}
	}
	return out
}

// workersFor returns the workers that hold the pods named namespace/name:
// those on the pods' nodes when every pod is a target on a known node,
// else all of them.
func (r *registry) workersFor(pods []string) []*workerConn {
	all := make([]*workerConn, 0, len(r.workers))
	for _, w := range r.workers {
		all = append(all, w)
	}
	slices.SortFunc(all, func(a, b *workerConn) int { return strings.Compare(a.name, b.name) })
	nodes, every := r.nodesOf(pods)
	if every {
		return all
	}
	var out []*workerConn
	for _, w := range all {
		if nodes[w.node] {
			out = append(out, w)
		}
	}
	return out
}

// nodesOf returns the nodes of the pods named namespace/name, or all when
// there are no pods or one is not a target on a known node.
func (r *registry) nodesOf(pods []string) (nodes map[string]bool, all bool) {
	if len(pods) == 0 {
		return nil, true
	}
	nodes = map[string]bool{}
	for _, p := range pods {
		node := ""
		for _, t := range r.targets.Targets {
			if t.Namespace+"/"+t.Name == p {
				node = t.Node
				break
			}
		}
		if node == "" {
			return nil, true
		}
		nodes[node] = true
	}
	return nodes, false
}

// sessionStats gathers the latest stats of every worker and the hub's.
func (r *registry) sessionStats() wire.SessionStats {
	st := wire.SessionStats{Workers: []wire.Stats{}, Hub: r.h.hubStats()}
	st.Hub.Workers, st.Hub.Subscribers = len(r.workers), len(r.subs)
	for _, w := range r.workers {
		ws := wire.Stats{Node: w.node, Worker: w.name}
		if s := w.stats.Load(); s != nil {
			ws = *s
		}
		ws.Capture = w.hello.Sources
		st.Workers = append(st.Workers, ws)
	}
	slices.SortFunc(st.Workers, func(a, b wire.Stats) int { return strings.Compare(a.Worker, b.Worker) })
	return st
}

// broadcastStats sends the stats to every subscriber, encoded once.
func (r *registry) broadcastStats() {
	if len(r.subs) == 0 {
		return
	}
	msg, err := preparedEnvelope(wire.TypeStats, r.sessionStats())
	if err != nil {
		r.h.log.Error("encoding stats", "err", err)
		return
	}
	for s := range r.subs {
		s.sendControl(msg)
	}
}
