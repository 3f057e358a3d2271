// Package session builds, applies and removes the Kubernetes objects of a
// capture session: its namespace, TLS Secret, the hub's RBAC, the hub pod
// and one worker pod per node that hosts a target. Builders are pure
// functions of a Spec; a Manager applies them with server-side apply, in
// an order that leaves nothing behind when a step fails, and checks before
// anything is created that the session can start (Preflight).
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Manager creates and removes sessions with the user's credentials.
type Manager struct {
	Client kubernetes.Interface
	// Host is the API server's URL, for error messages.
	Host string
	// Namespace is the current context's namespace: where Clean looks for
	// --shark-namespace leftovers when it may not list all namespaces.
	Namespace string
	// WaitTimeout bounds waiting for deletion (default 2m).
	WaitTimeout time.Duration
}

// Tunables that tests shorten.
var (
	pollInterval     = time.Second
	pullFailureGrace = 10 * time.Second // a pull error that outlives it is final
	startGrace       = 2 * time.Minute  // Clean leaves younger sessions alone
	cleanupTimeout   = 30 * time.Second // removing a session that failed to start
)

const defaultWaitTimeout = 2 * time.Minute

func (m *Manager) waitTimeout() time.Duration {
	if m.WaitTimeout > 0 {
		return m.WaitTimeout
	}
	return defaultWaitTimeout
}

// Progress reports one step of Start, or why it is waiting.
type Progress struct {
	Object  string // kind/name, e.g. "pod/shark-hub"
	State   string // "applied", "waiting", "ready"
	Reason  string // e.g. "ImagePullBackOff", "Unschedulable"
	Message string
}

// String reads like "pod/shark-hub waiting: ImagePullBackOff: ...".
func (p Progress) String() string {
	s := p.Object + " " + p.State
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	if p.Message != "" {
		s += ": " + p.Message
	}
	return s
}

// ProgressFunc receives progress; it must not block.
type ProgressFunc func(Progress)

// Ref names a session: enough to delete it.
type Ref struct {
	ID string
	// Namespace is where the session lives: shark-<ID>, or the
	// --shark-namespace.
	Namespace string
}

// Session is a started session.
type Session struct {
	Spec
	// Token authenticates the CLI to the hub API.
	Token string

	m        *Manager
	progress ProgressFunc
	hub      *corev1.Pod

	mu      sync.Mutex
	workers map[string]string // node → worker pod name
}

// Ref names the session for Delete.
func (s *Session) Ref() Ref { return Ref{ID: s.ID, Namespace: s.Namespace} }

// HubIP is the hub pod's IP.
func (s *Session) HubIP() string { return s.hub.Status.PodIP }

// Close deletes the session, waiting for its objects to be gone if wait.
func (s *Session) Close(ctx context.Context, wait bool) error {
	return s.m.Delete(ctx, s.Ref(), wait)
}

// Start creates the session: Namespace → Secret → RBAC → hub pod, then
// owner references to the hub pod, then waits for the hub to be Ready.
// Workers come later, with SyncWorkers. If any step fails, Start removes
// what it created and returns the error.
func (m *Manager) Start(ctx context.Context, spec Spec, progress ProgressFunc) (*Session, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	validity := max(DefaultCertValidity, spec.Options.MaxDuration+time.Hour)
	pki, err := NewPKI(spec.Namespace, validity)
	if err != nil {
		return nil, err
	}
	s := &Session{Spec: spec, Token: pki.Token, m: m, progress: progress, workers: map[string]string{}}
	if err := s.create(ctx, pki); err != nil {
		// The user's context may be what ended: clean up on a fresh one,
		// and wait, so that the error means nothing is left.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := m.Delete(cctx, s.Ref(), true); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("remove the failed session %s: %w", s.ID, derr))
		}
		return nil, err
	}
	return s, nil
}

func (s *Session) create(ctx context.Context, pki *PKI) error {
	var nsOwner *metav1.OwnerReference
	if !s.Shared {
		ns, err := apply(ctx, s, s.m.Client.CoreV1().Namespaces().Patch, s.NamespaceObject())
		if err != nil {
			return err
		}
		nsOwner = ptr.To(NamespaceOwner(ns))
	}
	if err := s.applyOwned(ctx, pki, nil, nsOwner); err != nil {
		return err
	}
	hub, err := apply(ctx, s, s.m.Client.CoreV1().Pods(s.Namespace).Patch, s.HubPod())
	if err != nil {
		return err
	}
	s.hub = hub
	// Owners are set before the wait, not after it: if the CLI dies while
	// the hub starts, the hub's deletion still takes these along.
	if err := s.applyOwned(ctx, pki, ptr.To(PodOwner(hub)), nsOwner); err != nil {
		return err
	}
	ready, err := s.m.waitReady(ctx, hub, s.Options.StartTimeout, s.progress)
	if err != nil {
		return err
	}
	s.hub = ready
	s.progress(Progress{Object: "pod/" + hub.Name, State: "ready", Message: "IP " + ready.Status.PodIP})
	return nil
}

// applyOwned applies the Secret and the hub's RBAC. It runs twice: before
// the hub pod exists (hubOwner nil), and once it does, to make them its
// dependents where the design says so.
func (s *Session) applyOwned(ctx context.Context, pki *PKI, hubOwner, nsOwner *metav1.OwnerReference) error {
	c := s.m.Client
	if _, err := apply(ctx, s, c.CoreV1().Secrets(s.Namespace).Patch, s.Secret(pki, hubOwner)); err != nil {
		return err
	}
	if !s.Shared {
		if hubOwner != nil {
			return nil // the rest is owned by the namespace, applied once
		}
		if _, err := apply(ctx, s, c.CoreV1().ServiceAccounts(s.Namespace).Patch, s.ServiceAccount(nil)); err != nil {
			return err
		}
		if _, err := apply(ctx, s, c.RbacV1().ClusterRoles().Patch, s.ClusterRole(nsOwner)); err != nil {
			return err
		}
		_, err := apply(ctx, s, c.RbacV1().ClusterRoleBindings().Patch, s.ClusterRoleBinding(nsOwner))
		return err
	}
	if _, err := apply(ctx, s, c.CoreV1().ServiceAccounts(s.Namespace).Patch, s.ServiceAccount(hubOwner)); err != nil {
		return err
	}
	if _, err := apply(ctx, s, c.RbacV1().Roles(s.Namespace).Patch, s.Role(hubOwner)); err != nil {
		return err
	}
	_, err := apply(ctx, s, c.RbacV1().RoleBindings(s.Namespace).Patch, s.RoleBinding(hubOwner))
	return err
}

// applyObject is a built object: typed, with its TypeMeta set.
type applyObject interface {
	runtime.Object
	GetName() string
}

// kindName reads like "pod/shark-hub".
func kindName(obj applyObject) string {
	return strings.ToLower(obj.GetObjectKind().GroupVersionKind().Kind) + "/" + obj.GetName()
}

// patchFunc is the Patch method of any typed client.
type patchFunc[T any] func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)

// applyOptions: Force takes over fields another manager (a user's kubectl
// edit) may hold, since the session's objects are ours alone.
var applyOptions = metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}

// apply server-side applies obj (JSON of the typed object, TypeMeta set)
// and reports it.
func apply[T any](ctx context.Context, s *Session, patch patchFunc[T], obj applyObject) (T, error) {
	var zero T
	data, err := json.Marshal(obj)
	if err != nil {
		return zero, err
	}
	what := kindName(obj)
	out, err := patch(ctx, obj.GetName(), types.ApplyPatchType, data, applyOptions)
	if err != nil {
		return zero, fmt.Errorf("apply %s: %w", what, err)
	}
	if s.progress != nil {
		s.progress(Progress{Object: what, State: "applied"})
	}
	return out, nil
}

// SyncWorkers makes the set of worker pods match nodes: one worker on each
// node that hosts a target, none elsewhere. Call it whenever targets move.
func (s *Session) SyncWorkers(ctx context.Context, nodes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, n := range nodes {
		if n != "" {
			want[n] = true
		}
	}
	var errs []error
	owner := ptr.To(PodOwner(s.hub))
	for _, node := range slices.Sorted(maps.Keys(want)) {
		if _, ok := s.workers[node]; ok {
			continue
		}
		pod := s.WorkerPod(node, s.HubIP(), owner)
		if _, err := apply(ctx, s, s.m.Client.CoreV1().Pods(s.Namespace).Patch, pod); err != nil {
			errs = append(errs, err)
			continue
		}
		s.workers[node] = pod.Name
	}
	for _, node := range slices.Sorted(maps.Keys(s.workers)) {
		if want[node] {
			continue
		}
		name := s.workers[node]
		err := s.m.Client.CoreV1().Pods(s.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete pod/%s: %w", name, err))
			continue
		}
		delete(s.workers, node)
		s.progress(Progress{Object: "pod/" + name, State: "deleted", Message: "no target left on node " + node})
	}
	return errors.Join(errs...)
}

// WorkerNodes lists the nodes that have a worker, sorted.
func (s *Session) WorkerNodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.workers))
}

// WorkerState is how one worker pod is doing.
type WorkerState struct {
	Node    string
	Pod     string
	Ready   bool
	Reason  string // why it is not ready, e.g. "ImagePullBackOff", "OutOfmemory"
	Message string
	// PullFailed: the image cannot be pulled (yet); Fatal: waiting will
	// not help (crash loop, a failed pod, an image that may not be pulled).
	PullFailed bool
	Fatal      bool
}

// WorkerStates reads the session's worker pods, so that the CLI can say
// why a node shows no traffic.
func (s *Session) WorkerStates(ctx context.Context) ([]WorkerState, error) {
	pods, err := s.m.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: SessionSelector(s.ID) + "," + LabelComponent + "=" + ComponentWorker,
	})
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	out := make([]WorkerState, 0, len(pods.Items))
	for i := range pods.Items {
		p := &pods.Items[i]
		st := podState(p)
		out = append(out, WorkerState{
			Node: p.Spec.NodeName, Pod: p.Name, Ready: st.ready,
			Reason: st.reason, Message: st.message,
			PullFailed: st.kind == statePullFailed, Fatal: st.kind == stateFatal,
		})
	}
	slices.SortFunc(out, func(a, b WorkerState) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}
