package session

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. The errors returned wrap them with a
// one-line message that says what to do.
var (
	ErrClusterUnreachable = errors.New("cannot reach the cluster")
	ErrUnauthorized       = errors.New("the cluster rejected the credentials")
	ErrNamespaceNotFound  = errors.New("namespace not found")
	ErrMissingPermission  = errors.New("missing permission")
	ErrPodSecurity        = errors.New("pod security admission would reject the capture pods")
	ErrNoSchedulableNodes = errors.New("no schedulable nodes")
	ErrImagePull          = errors.New("cannot pull the agent image")
	ErrHubFailed          = errors.New("the hub failed to start")
	ErrHubTimeout         = errors.New("timed out waiting for the hub")
	ErrDeleteTimeout      = errors.New("timed out waiting for deletion")
)

// NamespaceNotFoundError names the namespace that does not exist.
type NamespaceNotFoundError struct{ Name string }

func (e *NamespaceNotFoundError) Error() string { return fmt.Sprintf("namespace %q not found", e.Name) }

// Is makes errors.Is(err, ErrNamespaceNotFound) true.
func (e *NamespaceNotFoundError) Is(target error) bool { return target == ErrNamespaceNotFound }

// Permission is one verb on one resource, in a namespace or cluster-wide
// (Namespace ""), as a SelfSubjectAccessReview asks it.
type Permission struct {
	Verb        string
	Group       string
	Resource    string
	Subresource string
	Namespace   string
}

// String reads like "create pods in namespace shark-abc".
func (p Permission) String() string {
	var b strings.Builder
	b.WriteString(p.Verb)
	b.WriteByte(' ')
	b.WriteString(p.Resource)
	if p.Subresource != "" {
		b.WriteByte('/')
		b.WriteString(p.Subresource)
	}
	if p.Group != "" {
		b.WriteByte('.')
		b.WriteString(p.Group)
	}
	if p.Namespace != "" {
		b.WriteString(" in namespace ")
		b.WriteString(p.Namespace)
	} else if !clusterScoped[p.Resource] {
		b.WriteString(" in all namespaces")
	}
	return b.String()
}

// clusterScoped are the resources that no namespace holds.
var clusterScoped = map[string]bool{
	"namespaces": true, "nodes": true, "clusterroles": true, "clusterrolebindings": true,
}

// MissingPermissionError lists every permission the session needs and the
// user lacks, with a hint at a way around when there is one.
type MissingPermissionError struct {
	Missing []Permission
	Hint    string
}

func (e *MissingPermissionError) Error() string {
	parts := make([]string, len(e.Missing))
	for i, p := range e.Missing {
		parts[i] = p.String()
	}
	msg := "missing permission: " + strings.Join(parts, ", ")
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrMissingPermission) true.
func (e *MissingPermissionError) Is(target error) bool { return target == ErrMissingPermission }
