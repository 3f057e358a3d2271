package session

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fastClock shortens every wait of the package for one test.
func fastClock(t *testing.T) {
	t.Helper()
	oldPoll, oldGrace, oldStart := pollInterval, pullFailureGrace, startGrace
	pollInterval, pullFailureGrace = 2*time.Millisecond, 30*time.Millisecond
	t.Cleanup(func() { pollInterval, pullFailureGrace, startGrace = oldPoll, oldGrace, oldStart })
}

// fakeCluster is a fake clientset that, like an API server, gives every
// applied object a UID, and a kubelet whose hub pod statuses follow a
// script (the last one repeats).
type fakeCluster struct {
	*fake.Clientset
	mu        sync.Mutex
	hubScript []corev1.PodStatus
	hubGets   int
}

func newFakeCluster(t *testing.T, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	f := &fakeCluster{Clientset: fake.NewClientset(objs...)}
	react := k8stesting.ObjectReaction(f.Tracker())
	f.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		_, obj, err := react(a)
		if err != nil {
			return true, nil, err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return true, nil, err
		}
		if m.GetUID() == "" {
			m.SetUID(types.UID("uid-" + m.GetName()))
			if err := f.Tracker().Update(a.GetResource(), obj, a.GetNamespace()); err != nil {
				return true, nil, err
			}
		}
		return true, obj, nil
	})
	f.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		_, obj, err := react(a)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod)
		if pod.Labels[LabelComponent] != ComponentHub {
			return true, pod, nil
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if n := len(f.hubScript); n > 0 {
			pod = pod.DeepCopy()
			pod.Status = f.hubScript[min(f.hubGets, n-1)]
			f.hubGets++
		}
		return true, pod, nil
	})
	// An API server answers access reviews; this one allows everything.
	// Tests that deny prepend their own reactor.
	f.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		r.Status.Allowed = true
		return true, r, nil
	})
	return f
}

// script sets the statuses the hub pod goes through.
func (f *fakeCluster) script(st ...corev1.PodStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hubScript, f.hubGets = st, 0
}

// applied lists the objects applied, in order, as "kind/name".
func (f *fakeCluster) applied(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, a := range f.Actions() {
		p, ok := a.(k8stesting.PatchActionImpl)
		if !ok {
			continue
		}
		if p.PatchType != types.ApplyPatchType {
			t.Errorf("patch %s/%s is %s, want server-side apply", p.Resource.Resource, p.Name, p.PatchType)
		}
		if p.PatchOptions.FieldManager != FieldManager || p.PatchOptions.Force == nil || !*p.PatchOptions.Force {
			t.Errorf("apply %s/%s: options %+v, want field manager %q with force", p.Resource.Resource, p.Name, p.PatchOptions, FieldManager)
		}
		out = append(out, strings.TrimSuffix(p.Resource.Resource, "s")+"/"+p.Name)
	}
	return out
}

// deleted lists the objects deleted, in order, as "kind/name".
func (f *fakeCluster) deleted() []string {
	var out []string
	for _, a := range f.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			out = append(out, strings.TrimSuffix(d.Resource.Resource, "s")+"/"+d.Name)
		}
	}
	return out
}

func readyStatus(ip string) corev1.PodStatus {
	return corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "hub", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
	}
}

func waitingStatus(reason, msg string) corev1.PodStatus {
	return corev1.PodStatus{
		Phase:      corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:  "hub",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
		}},
	}
}

// progressLog collects progress lines.
type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) add(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, pr.String())
}

func (p *progressLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprint(strings.Join(p.lines, "\n"))
}
