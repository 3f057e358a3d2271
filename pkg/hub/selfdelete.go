package hub

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// This file is the hub's only use of client-go: the self-delete funcs,
// with the pod's ServiceAccount (in-cluster config). The session grants
// that account exactly this one delete.

// DeleteNamespace returns a SelfDelete func that deletes the session
// namespace ns, and with it everything in the session.
func DeleteNamespace(ns string) (func(context.Context) error, error) {
	cfg, err := inClusterConfig()
	if err != nil {
		return nil, err
	}
	return deleteNamespace(cfg, ns)
}

// DeletePod returns a SelfDelete func that deletes the hub's own pod (in
// --shark-namespace mode, where the session lives in a namespace it did
// not create): the session's other objects are owned by the pod, and the
// garbage collector removes them.
func DeletePod(ns, pod string) (func(context.Context) error, error) {
	cfg, err := inClusterConfig()
	if err != nil {
		return nil, err
	}
	return deletePod(cfg, ns, pod)
}

func deleteNamespace(cfg *rest.Config, ns string) (func(context.Context) error, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return func(ctx context.Context) error {
		return ignoreGone(cs.CoreV1().Namespaces().Delete(ctx, ns, background()), "namespace", ns)
	}, nil
}

func deletePod(cfg *rest.Config, ns, pod string) (func(context.Context) error, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return func(ctx context.Context) error {
		return ignoreGone(cs.CoreV1().Pods(ns).Delete(ctx, pod, background()), "pod", ns+"/"+pod)
	}, nil
}

func inClusterConfig() (*rest.Config, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("hub: self-delete needs in-cluster credentials: %w", err)
	}
	cfg.UserAgent = "kubectl-shark-hub"
	return cfg, nil
}

// background deletes dependents in the background: the hub is among them.
func background() metav1.DeleteOptions {
	p := metav1.DeletePropagationBackground
	return metav1.DeleteOptions{PropagationPolicy: &p}
}

// ignoreGone treats an object already gone, or a namespace already being
// deleted (409 Conflict), as deleted.
func ignoreGone(err error, kind, name string) error {
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return fmt.Errorf("deleting %s %s: %w", kind, name, err)
}
