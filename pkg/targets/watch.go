package targets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
)

// EventType says what happened to a target.
type EventType string

const (
	Added    EventType = "Added"
	Modified EventType = "Modified" // node, IPs, running, ready or terminating changed
	Deleted  EventType = "Deleted"  // gone, or out of the scope
)

// Event is one change of the set of targets.
type Event struct {
	Type   EventType
	Target Target
}

// listPageSize bounds one page of a pod list (large clusters).
const listPageSize = 500

// relistBackoff is the pause between failed relists; tests shorten it.
var relistBackoff = 2 * time.Second

// List returns the pods in scope now, sorted by namespace and name: the
// preview of what a session would capture.
func List(ctx context.Context, c kubernetes.Interface, s Scope) ([]Target, error) {
	var out []Target
	for _, ns := range s.ListNamespaces() {
		pods, _, err := listPods(ctx, c, s, ns)
		if err != nil {
			return nil, err
		}
		for i := range pods {
			if s.Matches(&pods[i]) {
				out = append(out, FromPod(&pods[i]))
			}
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}

// listPods lists one namespace ("" for all) page by page, and returns the
// resource version to watch from.
func listPods(ctx context.Context, c kubernetes.Interface, s Scope, ns string) ([]corev1.Pod, string, error) {
	opts := metav1.ListOptions{LabelSelector: s.selector().String(), Limit: listPageSize}
	var pods []corev1.Pod
	rv := ""
	for {
		l, err := c.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, "", fmt.Errorf("list pods in %s: %w", where(ns), err)
		}
		if rv == "" {
			rv = l.ResourceVersion // every page is of the same snapshot
		}
		pods = append(pods, l.Items...)
		if l.Continue == "" {
			return pods, rv, nil
		}
		opts.Continue = l.Continue
	}
}

func where(ns string) string {
	if ns == metav1.NamespaceAll {
		return "all namespaces"
	}
	return "namespace " + ns
}

// update is what a namespace watcher hands to the tracker.
type update struct {
	pod     *corev1.Pod
	deleted bool
	// resync replaces everything known in namespace ns ("" = all) by pods.
	resync bool
	ns     string
	pods   []corev1.Pod
}

// Watch lists the pods in scope, then follows them, as stern does: each
// namespace's watch is a RetryWatcher, so API server timeouts do not end
// it, and a watch that expires (410 Gone) is replaced by a fresh list
// whose differences become events. Events are de-duplicated by pod UID:
// a pod appears once (Added), changes only when something a capture cares
// about changes (Modified), and leaves once (Deleted). The first events
// describe the pods that exist. The channel closes when ctx ends.
//
// Errors of the first list are returned (no permission, no namespace);
// later ones are retried.
func Watch(ctx context.Context, c kubernetes.Interface, s Scope) (<-chan Event, error) {
	var initial []update
	rvs := map[string]string{}
	for _, ns := range s.ListNamespaces() {
		pods, rv, err := listPods(ctx, c, s, ns)
		if err != nil {
			return nil, err
		}
		if rv == "" || rv == "0" {
			return nil, fmt.Errorf("list pods in %s: the API server returned no resource version to watch from", where(ns))
		}
		rvs[ns] = rv
		initial = append(initial, update{resync: true, ns: ns, pods: pods})
	}
	updates := make(chan update)
	var wg sync.WaitGroup
	for ns, rv := range rvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watchNamespace(ctx, c, s, ns, rv, updates)
		}()
	}
	go func() { wg.Wait(); close(updates) }()

	out := make(chan Event, 64)
	go func() {
		defer close(out)
		tr := newTracker(s)
		for _, u := range initial {
			if !send(ctx, out, tr.apply(u)) {
				return
			}
		}
		for u := range updates {
			if !send(ctx, out, tr.apply(u)) {
				return
			}
		}
	}()
	return out, nil
}

func send(ctx context.Context, out chan<- Event, evs []Event) bool {
	for _, e := range evs {
		select {
		case out <- e:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// podWatcher watches the pods of one namespace with the scope's selector.
type podWatcher struct {
	c   kubernetes.Interface
	ns  string
	sel string
}

func (w podWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.LabelSelector = w.sel
	return w.c.CoreV1().Pods(w.ns).Watch(ctx, opts)
}

// watchNamespace follows one namespace until ctx ends.
func watchNamespace(ctx context.Context, c kubernetes.Interface, s Scope, ns, rv string, updates chan<- update) {
	pw := podWatcher{c: c, ns: ns, sel: s.selector().String()}
	for ctx.Err() == nil {
		rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, pw)
		if err == nil {
			follow(ctx, rw, updates)
			rw.Stop()
		}
		// The watch ended for good (its resource version expired): list
		// again, and let the tracker turn the difference into events.
		rv = ""
		for ctx.Err() == nil && rv == "" {
			pods, newRV, err := listPods(ctx, c, s, ns)
			if err == nil && newRV != "" && newRV != "0" {
				if !sendUpdate(ctx, updates, update{resync: true, ns: ns, pods: pods}) {
					return
				}
				rv = newRV
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(relistBackoff):
			}
		}
	}
}

// follow forwards one RetryWatcher's pod events until it ends.
func follow(ctx context.Context, rw *watchtools.RetryWatcher, updates chan<- update) {
	for ev := range rw.ResultChan() {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok {
			continue // a Status (Error) or a bookmark
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			if !sendUpdate(ctx, updates, update{pod: pod}) {
				return
			}
		case watch.Deleted:
			if !sendUpdate(ctx, updates, update{pod: pod, deleted: true}) {
				return
			}
		}
	}
}

func sendUpdate(ctx context.Context, updates chan<- update, u update) bool {
	select {
	case updates <- u:
		return true
	case <-ctx.Done():
		return false
	}
}

// tracker knows the current targets by UID and turns updates into events.
type tracker struct {
	scope Scope
	known map[types.UID]Target
}

func newTracker(s Scope) *tracker { return &tracker{scope: s, known: map[types.UID]Target{}} }

func (tr *tracker) apply(u update) []Event {
	switch {
	case u.resync:
		return tr.resync(u.ns, u.pods)
	case u.deleted:
		return tr.remove(u.pod.UID)
	}
	return tr.upsert(u.pod)
}

func (tr *tracker) upsert(p *corev1.Pod) []Event {
	if !tr.scope.Matches(p) {
		return tr.remove(p.UID)
	}
	t := FromPod(p)
	old, ok := tr.known[p.UID]
	tr.known[p.UID] = t
	switch {
	case !ok:
		return []Event{{Type: Added, Target: t}}
	case !old.Equal(t):
		return []Event{{Type: Modified, Target: t}}
	}
	return nil
}

func (tr *tracker) remove(uid types.UID) []Event {
	t, ok := tr.known[uid]
	if !ok {
		return nil
	}
	delete(tr.known, uid)
	return []Event{{Type: Deleted, Target: t}}
}

func (tr *tracker) resync(ns string, pods []corev1.Pod) []Event {
	var evs []Event
	present := map[types.UID]bool{}
	for i := range pods {
		present[pods[i].UID] = true
		evs = append(evs, tr.upsert(&pods[i])...)
	}
	var gone []Target
	for uid, t := range tr.known {
		if (ns == metav1.NamespaceAll || t.Namespace == ns) && !present[uid] {
			gone = append(gone, t)
		}
	}
	slices.SortFunc(gone, func(a, b Target) int { return strings.Compare(a.Key(), b.Key()) })
	for _, t := range gone {
		evs = append(evs, tr.remove(t.UID)...)
	}
	return evs
}
