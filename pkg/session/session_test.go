package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

func startOptions(shared string) Options {
	o := testOptions()
	o.ID = "abc123"
	o.SharkNamespace = shared
	o.StartTimeout = 5 * time.Second
	return o
}

func TestStartAppliesInOrder(t *testing.T) {
	fastClock(t)
	for _, tc := range []struct {
		name   string
		shared string
		want   []string
	}{
		{
			name: "own namespace",
			want: []string{
				"namespace/shark-abc123",
				"secret/shark-tls",
				"serviceaccount/shark-hub",
				"clusterrole/shark-abc123-hub",
				"clusterrolebinding/shark-abc123-hub",
				"pod/shark-hub",
				"secret/shark-tls", // now owned by the hub pod
			},
		},
		{
			name:   "shared namespace",
			shared: "team-a",
			want: []string{
				"secret/shark-tls-abc123",
				"serviceaccount/shark-hub-abc123",
				"role/shark-hub-abc123",
				"rolebinding/shark-hub-abc123",
				"pod/shark-hub-abc123",
				// now owned by the hub pod
				"secret/shark-tls-abc123",
				"serviceaccount/shark-hub-abc123",
				"role/shark-hub-abc123",
				"rolebinding/shark-hub-abc123",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t)
			c.script(
				corev1.PodStatus{Phase: corev1.PodPending},
				waitingStatus("ContainerCreating", ""),
				readyStatus("10.1.2.3"),
			)
			m := &Manager{Client: c}
			var log progressLog
			s, err := m.Start(context.Background(), mustSpec(t, startOptions(tc.shared)), log.add)
			if err != nil {
				t.Fatalf("Start: %v\nprogress:\n%s", err, &log)
			}
			if d := cmp.Diff(tc.want, c.applied(t)); d != "" {
				t.Errorf("applied (-want +got):\n%s", d)
			}
			if s.HubIP() != "10.1.2.3" || len(s.Token) != 64 {
				t.Errorf("HubIP = %q, token %q", s.HubIP(), s.Token)
			}
			hubUID := "uid-" + s.HubPodName()
			sec, err := c.CoreV1().Secrets(s.Namespace).Get(context.Background(), s.SecretName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(sec.OwnerReferences) != 1 || string(sec.OwnerReferences[0].UID) != hubUID {
				t.Errorf("secret owners = %+v, want the hub pod %s", sec.OwnerReferences, hubUID)
			}
			if len(sec.Data[SecretToken]) != 64 || !strings.Contains(string(sec.Data[SecretCACert]), "BEGIN CERTIFICATE") {
				t.Errorf("secret data = %q", sec.Data)
			}
			if tc.shared == "" {
				cr, err := c.RbacV1().ClusterRoles().Get(context.Background(), "shark-abc123-hub", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(cr.OwnerReferences) != 1 || cr.OwnerReferences[0].Kind != "Namespace" || cr.OwnerReferences[0].UID != "uid-shark-abc123" {
					t.Errorf("clusterrole owners = %+v, want the namespace", cr.OwnerReferences)
				}
			} else {
				rb, err := c.RbacV1().RoleBindings("team-a").Get(context.Background(), "shark-hub-abc123", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(rb.OwnerReferences) != 1 || string(rb.OwnerReferences[0].UID) != hubUID {
					t.Errorf("rolebinding owners = %+v, want the hub pod", rb.OwnerReferences)
				}
			}
			for _, want := range []string{"pod/" + s.HubPodName() + " waiting: ContainerCreating", "pod/" + s.HubPodName() + " ready: IP 10.1.2.3"} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("progress lacks %q:\n%s", want, &log)
				}
			}
		})
	}
}

func TestStartFailuresCleanUp(t *testing.T) {
	fastClock(t)
	for _, tc := range []struct {
		name     string
		script   []corev1.PodStatus
		events   []runtime.Object
		timeout  time.Duration
		wantIs   error
		wantMsg  string
		progress string
	}{
		{
			name: "image not found: the event says why",
			script: []corev1.PodStatus{
				waitingStatus("ErrImagePull", "rpc error: code = NotFound"),
				waitingStatus("ImagePullBackOff", `Back-off pulling image "registry.example/shark-agent:v1.2.3"`),
			},
			events: []runtime.Object{&corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "e1", Namespace: "shark-abc123"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "shark-hub", Namespace: "shark-abc123"},
				Type:           corev1.EventTypeWarning, Reason: "Failed",
				Message: `Failed to pull image "registry.example/shark-agent:v1.2.3": not found`,
			}},
			wantIs:   ErrImagePull,
			wantMsg:  `cannot pull the agent image registry.example/shark-agent:v1.2.3: ImagePullBackOff: Failed to pull image "registry.example/shark-agent:v1.2.3": not found`,
			progress: "pod/shark-hub waiting: ErrImagePull: rpc error: code = NotFound",
		},
		{
			name:    "invalid image name fails at once",
			script:  []corev1.PodStatus{waitingStatus("InvalidImageName", `couldn't parse image name "a b"`)},
			wantIs:  ErrImagePull,
			wantMsg: `cannot pull the agent image registry.example/shark-agent:v1.2.3: InvalidImageName: couldn't parse image name "a b"`,
		},
		{
			name: "crash loop",
			script: []corev1.PodStatus{{
				Phase: corev1.PodRunning,
				ContainerStatuses: []corev1.ContainerStatus{{
					Name: "hub", RestartCount: 3,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 1, Reason: "Error", Message: "unknown flag: --listen-worker",
					}},
				}},
			}},
			wantIs:  ErrHubFailed,
			wantMsg: "the hub failed to start: pod/shark-hub: CrashLoopBackOff: exit code 1 (Error): unknown flag: --listen-worker",
		},
		{
			name: "unschedulable until the timeout",
			script: []corev1.PodStatus{{
				Phase: corev1.PodPending,
				Conditions: []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					Message: "0/3 nodes are available: 3 Insufficient memory.",
				}},
			}},
			timeout:  50 * time.Millisecond,
			wantIs:   ErrHubTimeout,
			wantMsg:  "timed out waiting for the hub after 50ms: pod/shark-hub: Unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
			progress: "pod/shark-hub waiting: Unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
		},
		{
			name:    "evicted",
			script:  []corev1.PodStatus{{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}},
			wantIs:  ErrHubFailed,
			wantMsg: "the hub failed to start: pod/shark-hub: Evicted: The node was low on resource: memory.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t, tc.events...)
			c.script(tc.script...)
			o := startOptions("")
			if tc.timeout > 0 {
				o.StartTimeout = tc.timeout
			}
			var log progressLog
			m := &Manager{Client: c}
			start := time.Now()
			_, err := m.Start(context.Background(), mustSpec(t, o), log.add)
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("Start error = %v, want %v", err, tc.wantIs)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("Start error:\n got %s\nwant %s", err, tc.wantMsg)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("failure took %s", el)
			}
			if tc.progress != "" && !strings.Contains(log.String(), tc.progress) {
				t.Errorf("progress lacks %q:\n%s", tc.progress, &log)
			}
			// Cleaned up: the namespace (which takes the rest) and the
			// cluster-scoped RBAC are gone.
			wantDeleted := []string{"namespace/shark-abc123", "clusterrolebinding/shark-abc123-hub", "clusterrole/shark-abc123-hub"}
			if d := cmp.Diff(wantDeleted, c.deleted()); d != "" {
				t.Errorf("deleted (-want +got):\n%s", d)
			}
		})
	}
}

func TestStartApplyErrorCleansUp(t *testing.T) {
	fastClock(t)
	c := newFakeCluster(t)
	c.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "shark-hub", errors.New(`violates PodSecurity "restricted:latest"`))
	})
	m := &Manager{Client: c}
	_, err := m.Start(context.Background(), mustSpec(t, startOptions("")), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "apply pod/shark-hub: ") || !apierrors.IsForbidden(err) {
		t.Fatalf("Start error = %v", err)
	}
	if _, err := c.CoreV1().Namespaces().Get(context.Background(), "shark-abc123", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace left behind: %v", err)
	}
}

func TestPodState(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want state
	}{
		{name: "ready", pod: corev1.Pod{Status: readyStatus("10.0.0.1")}, want: state{ready: true}},
		{name: "ready without IP is not ready", pod: corev1.Pod{Status: readyStatus("")}, want: state{}},
		{name: "unscheduled", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}},
			want: state{reason: "Pending", message: "waiting to be scheduled"}},
		{name: "scheduled, creating", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending}},
			want: state{reason: "ContainerCreating", message: "on node n1"}},
		{name: "pull backoff", pod: corev1.Pod{Status: waitingStatus("ImagePullBackOff", "Back-off")},
			want: state{kind: statePullFailed, reason: "ImagePullBackOff", message: "Back-off"}},
		{name: "never pull", pod: corev1.Pod{Status: waitingStatus("ErrImageNeverPull", "not present")},
			want: state{kind: stateFatal, reason: "ErrImageNeverPull", message: "not present"}},
		{name: "config error", pod: corev1.Pod{Status: waitingStatus("CreateContainerConfigError", `secret "shark-tls" not found`)},
			want: state{kind: stateFatal, reason: "CreateContainerConfigError", message: `secret "shark-tls" not found`}},
		{name: "running, probe pending", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}},
			want: state{reason: "NotReady", message: "running, readiness probe not passed yet"}},
		{name: "out of memory at admission", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "OutOfmemory", Message: "Node didn't have enough resource: memory"}},
			want: state{kind: stateFatal, reason: "OutOfmemory", message: "Node didn't have enough resource: memory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, podState(&tc.pod), cmp.AllowUnexported(state{})); d != "" {
				t.Errorf("podState (-want +got):\n%s", d)
			}
		})
	}
}

func TestSyncWorkers(t *testing.T) {
	fastClock(t)
	c := newFakeCluster(t)
	c.script(readyStatus("10.1.2.3"))
	m := &Manager{Client: c}
	var log progressLog
	s, err := m.Start(context.Background(), mustSpec(t, startOptions("")), log.add)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.ClearActions()
	if err := s.SyncWorkers(ctx, []string{"node-b", "node-a", "node-a", ""}); err != nil {
		t.Fatal(err)
	}
	wa, wb, wc := "pod/"+s.WorkerPodName("node-a"), "pod/"+s.WorkerPodName("node-b"), "pod/"+s.WorkerPodName("node-c")
	if d := cmp.Diff([]string{wa, wb}, c.applied(t)); d != "" {
		t.Errorf("first sync applied (-want +got):\n%s", d)
	}
	c.ClearActions()
	if err := s.SyncWorkers(ctx, []string{"node-b", "node-c"}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{wc}, c.applied(t)); d != "" {
		t.Errorf("second sync applied (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{wa}, c.deleted()); d != "" {
		t.Errorf("second sync deleted (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"node-b", "node-c"}, s.WorkerNodes()); d != "" {
		t.Errorf("WorkerNodes (-want +got):\n%s", d)
	}
	p, err := c.CoreV1().Pods(s.Namespace).Get(ctx, s.WorkerPodName("node-c"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "node-c" || p.Spec.Containers[0].Env[0].Value != "10.1.2.3:8443" ||
		len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != "uid-shark-hub" {
		t.Errorf("worker: node %q env %v owners %+v", p.Spec.NodeName, p.Spec.Containers[0].Env[0], p.OwnerReferences)
	}
	states, err := s.WorkerStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].Node != "node-b" || states[1].Node != "node-c" || states[1].Reason != "ContainerCreating" {
		t.Errorf("WorkerStates = %+v", states)
	}
}

func TestStartInterruptedCleansUp(t *testing.T) {
	fastClock(t)
	c := newFakeCluster(t)
	c.script(waitingStatus("ContainerCreating", ""))
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{Client: c}
	_, err := m.Start(ctx, mustSpec(t, startOptions("")), func(p Progress) {
		if p.State == "waiting" {
			cancel() // Ctrl-C while the hub starts
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if _, err := c.CoreV1().Namespaces().Get(context.Background(), "shark-abc123", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace left behind after an interrupt: %v", err)
	}
}

func TestStartToleratesTransientReadErrors(t *testing.T) {
	fastClock(t)
	c := newFakeCluster(t)
	c.script(readyStatus("10.1.2.3"))
	fails := 0
	c.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fails < 3 {
			fails++
			return true, nil, apierrors.NewServerTimeout(corev1.Resource("pods"), "get", 1)
		}
		return false, nil, nil
	})
	m := &Manager{Client: c}
	if _, err := m.Start(context.Background(), mustSpec(t, startOptions("")), nil); err != nil {
		t.Fatalf("Start = %v", err)
	}
}
