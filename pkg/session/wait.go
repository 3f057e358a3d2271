package session

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stateKind classifies why a pod is not ready.
type stateKind int

const (
	statePending    stateKind = iota // on its way: scheduling, pulling, starting
	statePullFailed                  // the image cannot be pulled (yet)
	stateFatal                       // it will not get better by waiting
)

// state is what a pod is doing, in the words the user needs.
type state struct {
	ready   bool
	kind    stateKind
	reason  string
	message string
}

// Waiting reasons of a container that mean the image is the problem.
var pullReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "RegistryUnavailable": true,
}

// Waiting reasons that no amount of waiting fixes.
var fatalReasons = map[string]bool{
	"InvalidImageName": true, "ErrImageNeverPull": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "RunContainerError": true,
}

// podState reads a pod's status: ready, or the most telling reason why
// not (a container's waiting reason beats the pod's conditions).
func podState(p *corev1.Pod) state {
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		reason := p.Status.Reason
		if reason == "" {
			reason = string(p.Status.Phase)
		}
		return state{kind: stateFatal, reason: reason, message: p.Status.Message}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			st := state{reason: w.Reason, message: w.Message}
			switch {
			case fatalReasons[w.Reason]:
				st.kind = stateFatal
				if w.Reason == "CrashLoopBackOff" {
					st.message = lastTermination(cs)
				}
			case pullReasons[w.Reason]:
				st.kind = statePullFailed
			}
			return st
		}
	}
	for _, c := range p.Status.Conditions {
		switch {
		case c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue:
			return state{ready: p.Status.PodIP != ""}
		case c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse:
			return state{reason: c.Reason, message: c.Message}
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running != nil && !cs.Ready {
			return state{reason: "NotReady", message: "running, readiness probe not passed yet"}
		}
	}
	if p.Status.Phase == "" || p.Status.Phase == corev1.PodPending {
		if p.Spec.NodeName == "" {
			return state{reason: "Pending", message: "waiting to be scheduled"}
		}
		return state{reason: "ContainerCreating", message: "on node " + p.Spec.NodeName}
	}
	return state{reason: string(p.Status.Phase)}
}

// lastTermination says how a crashing container ended last time.
func lastTermination(cs corev1.ContainerStatus) string {
	t := cs.LastTerminationState.Terminated
	if t == nil {
		return fmt.Sprintf("restarted %d times", cs.RestartCount)
	}
	msg := fmt.Sprintf("exit code %d", t.ExitCode)
	if t.Reason != "" {
		msg += " (" + t.Reason + ")"
	}
	if t.Message != "" {
		msg += ": " + t.Message
	}
	return msg
}

// waitReady polls pod until it is Ready, reporting each new reason for
// waiting. An image that cannot be pulled fails within pullFailureGrace of
// the first pull error, with the kubelet's event message, which says why
// (not found, unauthorized, ...).
func (m *Manager) waitReady(ctx context.Context, pod *corev1.Pod, timeout time.Duration, progress ProgressFunc) (*corev1.Pod, error) {
	if timeout <= 0 {
		timeout = DefaultOptions().StartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	obj := "pod/" + pod.Name
	var last state
	var pullSince time.Time
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		p, err := m.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("%w: %s was deleted", ErrHubFailed, obj)
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return nil, fmt.Errorf("read %s: %w", obj, err)
		case err != nil:
			// Anything else may pass (a timeout, a restarting API server):
			// poll again, and say so if it lasts until the deadline.
			last = state{reason: "APIError", message: err.Error()}
		case err == nil:
			st := podState(p)
			if st.ready {
				return p, nil
			}
			if st.reason != last.reason || st.message != last.message {
				progress(Progress{Object: obj, State: "waiting", Reason: st.reason, Message: st.message})
				last = st
			}
			if st.kind != statePullFailed {
				pullSince = time.Time{}
			} else if pullSince.IsZero() {
				pullSince = time.Now()
			}
			if err := m.failure(ctx, p, st, pullSince); err != nil {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			if parentErr := context.Cause(ctx); parentErr != context.DeadlineExceeded {
				return nil, parentErr
			}
			return nil, fmt.Errorf("%w after %s: %s: %s", ErrHubTimeout, timeout, obj, describe(last))
		case <-tick.C:
		}
	}
}

// failure turns a state that waiting will not fix into an error.
func (m *Manager) failure(ctx context.Context, p *corev1.Pod, st state, pullSince time.Time) error {
	obj := "pod/" + p.Name
	switch {
	case st.kind == statePullFailed && time.Since(pullSince) >= pullFailureGrace,
		st.kind == stateFatal && pullReasons[st.reason]:
		return fmt.Errorf("%w %s: %s: %s", ErrImagePull, imageOf(p), st.reason, m.pullMessage(ctx, p, st.message))
	case st.kind == stateFatal:
		return fmt.Errorf("%w: %s: %s", ErrHubFailed, obj, describe(st))
	}
	return nil
}

func describe(st state) string {
	if st.reason == "" {
		return "not ready"
	}
	if st.message == "" {
		return st.reason
	}
	return st.reason + ": " + st.message
}

func imageOf(p *corev1.Pod) string {
	if len(p.Spec.Containers) == 0 {
		return ""
	}
	return p.Spec.Containers[0].Image
}

// pullMessage prefers the kubelet's latest warning event about the pod: a
// container's BackOff message only says that it backs off, the event says
// what the registry answered.
func (m *Manager) pullMessage(ctx context.Context, p *corev1.Pod, fallback string) string {
	events, err := m.Client.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + p.Name,
	})
	if err != nil {
		return fallback
	}
	var best *corev1.Event
	for i := range events.Items {
		e := &events.Items[i]
		if e.InvolvedObject.Name != p.Name || e.Type != corev1.EventTypeWarning || e.Reason != "Failed" {
			continue
		}
		if best == nil || eventTime(e).After(eventTime(best)) {
			best = e
		}
	}
	if best == nil {
		return fallback
	}
	return best.Message
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
