package session

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrNoSession is wrapped by Attach when the session does not exist.
var ErrNoSession = errors.New("no such session")

// Attached is a running session another client joins: the hub to reach,
// and the token to show it.
type Attached struct {
	Ref
	HubPod string
	Token  string
}

// Attach finds the running session id, in its own namespace or, when
// sharedNamespace is set, in that one, and reads its token from the
// session's Secret. The session's owner keeps it; an attached client only
// reads from it and sends heartbeats.
func (m *Manager) Attach(ctx context.Context, id, sharedNamespace string) (*Attached, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("session id %q: want 6 lowercase letters or digits", id)
	}
	shared := sharedNamespace != ""
	ns := SessionNamespace(id)
	if shared {
		ns = sharedNamespace
	}
	n := namesFor(id, shared)
	hub, err := m.Client.CoreV1().Pods(ns).Get(ctx, n.hub, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w %s: no pod %s/%s", ErrNoSession, id, ns, n.hub)
	}
	if err != nil {
		return nil, fmt.Errorf("get the hub of session %s: %w", id, err)
	}
	if hub.Labels[LabelManagedBy] != ManagedByValue || hub.Labels[LabelSession] != id {
		return nil, fmt.Errorf("%w %s: pod %s/%s is not its hub", ErrNoSession, id, ns, n.hub)
	}
	if hub.DeletionTimestamp != nil {
		return nil, fmt.Errorf("session %s is being removed", id)
	}
	if st := podState(hub); !st.ready {
		return nil, fmt.Errorf("the hub of session %s is not ready: %s", id, describe(st))
	}
	sec, err := m.Client.CoreV1().Secrets(ns).Get(ctx, n.secret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the token of session %s: %w", id, err)
	}
	tok := strings.TrimSpace(string(sec.Data[SecretToken]))
	if tok == "" {
		return nil, fmt.Errorf("session %s: secret %s/%s holds no token", id, ns, n.secret)
	}
	return &Attached{Ref: Ref{ID: id, Namespace: ns}, HubPod: n.hub, Token: tok}, nil
}
