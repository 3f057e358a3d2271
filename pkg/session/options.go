package session

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubectl-shark/kubectl-shark/pkg/version"
)

// ImageRepository is where the shark-agent image is published; the tag is
// the plugin's version, so the plugin and the agents always match.
const ImageRepository = "ghcr.io/kubectl-shark/shark-agent"

// DefaultImage is the agent image of this build.
func DefaultImage() string { return ImageRepository + ":" + version.Version }

// Options configure a session. DefaultOptions holds every default; the CLI
// binds its flags straight to these fields.
type Options struct {
	// ID is the session id; empty draws a random one.
	ID string
	// SharkNamespace puts the session in this existing namespace instead of
	// creating shark-<id> (--shark-namespace).
	SharkNamespace string

	Image           string
	ImagePullPolicy corev1.PullPolicy

	// MaxDuration bounds the life of every pod (activeDeadlineSeconds): the
	// last resort when both the CLI and the hub's idle timer are gone.
	MaxDuration time.Duration
	// IdleTimeout is how long the hub lives without a client heartbeat.
	IdleTimeout time.Duration
	// StartTimeout bounds the wait for the hub to become Ready.
	StartTimeout time.Duration

	Hub    Resources
	Worker Resources

	// StorageLimit is the size of each worker's pcap ring volume.
	StorageLimit resource.Quantity
	// StoragePercent of StorageLimit is what the ring may fill (the rest is
	// headroom, so that the last segment never makes the kubelet evict).
	StoragePercent int64
	// MemoryBudgetPercent of the worker's memory limit is its --max-memory:
	// above it, dissection sheds load rather than being OOM-killed.
	MemoryBudgetPercent int64

	// WorkerProfile is the security profile of worker pods.
	WorkerProfile ProfileName
}

// Resources are a container's CPU and memory. Requests are capped at the
// limits, so setting only a small limit stays valid.
type Resources struct {
	CPURequest    resource.Quantity
	CPULimit      resource.Quantity
	MemoryRequest resource.Quantity
	MemoryLimit   resource.Quantity
}

// DefaultOptions returns the defaults of every session option.
func DefaultOptions() Options {
	return Options{
		Image:           DefaultImage(),
		ImagePullPolicy: corev1.PullIfNotPresent,
		MaxDuration:     4 * time.Hour,
		IdleTimeout:     60 * time.Second,
		StartTimeout:    2 * time.Minute,
		Hub: Resources{
			CPURequest:    resource.MustParse("50m"),
			CPULimit:      resource.MustParse("1"),
			MemoryRequest: resource.MustParse("64Mi"),
			MemoryLimit:   resource.MustParse("256Mi"),
		},
		// Small requests: a worker is pinned with nodeName, so the kubelet
		// admits it against what the node has left, with no scheduler to
		// find room elsewhere. The limits bound what capture may take.
		Worker: Resources{
			CPURequest:    resource.MustParse("100m"),
			CPULimit:      resource.MustParse("1"),
			MemoryRequest: resource.MustParse("128Mi"),
			MemoryLimit:   resource.MustParse("512Mi"),
		},
		StorageLimit:        resource.MustParse("500Mi"),
		StoragePercent:      90,
		MemoryBudgetPercent: 80,
		WorkerProfile:       ProfileCapture,
	}
}

// Validate checks options before anything is created.
func (o Options) Validate() error {
	var errs []error
	if o.ID != "" && !ValidID(o.ID) {
		errs = append(errs, fmt.Errorf("session id %q: want 6 lowercase letters or digits", o.ID))
	}
	if o.Image == "" {
		errs = append(errs, errors.New("--image must not be empty"))
	}
	switch o.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("--image-pull-policy %q: want Always, IfNotPresent or Never", o.ImagePullPolicy))
	}
	if o.MaxDuration < time.Minute {
		errs = append(errs, fmt.Errorf("--max-duration %s: want at least 1m", o.MaxDuration))
	}
	if o.IdleTimeout < time.Second {
		errs = append(errs, fmt.Errorf("--idle-timeout %s: want at least 1s", o.IdleTimeout))
	}
	if o.StorageLimit.Value() < 16<<20 {
		errs = append(errs, fmt.Errorf("--storage-limit %s: want at least 16Mi", o.StorageLimit.String()))
	}
	if o.StoragePercent < 10 || o.StoragePercent > 100 {
		errs = append(errs, fmt.Errorf("storage percent %d: want 10..100", o.StoragePercent))
	}
	if o.MemoryBudgetPercent < 10 || o.MemoryBudgetPercent > 100 {
		errs = append(errs, fmt.Errorf("memory budget percent %d: want 10..100", o.MemoryBudgetPercent))
	}
	if _, ok := profiles[o.WorkerProfile]; !ok {
		errs = append(errs, fmt.Errorf("--worker-profile %q: want one of %v", o.WorkerProfile, ProfileNames()))
	}
	errs = append(errs, o.Hub.validate("hub"), o.Worker.validate("worker"))
	return errors.Join(errs...)
}

func (r Resources) validate(who string) error {
	if r.MemoryLimit.Sign() > 0 && r.MemoryLimit.Value() < 32<<20 {
		return fmt.Errorf("--%s-memory %s: want at least 32Mi", who, r.MemoryLimit.String())
	}
	if r.CPULimit.Sign() < 0 || r.CPURequest.Sign() < 0 || r.MemoryRequest.Sign() < 0 || r.MemoryLimit.Sign() < 0 {
		return fmt.Errorf("%s resources must not be negative", who)
	}
	return nil
}

// requirements turns r into a container's resources; zero quantities are
// left out, and a request above its limit is lowered to the limit.
func (r Resources) requirements() corev1.ResourceRequirements {
	req := corev1.ResourceList{}
	lim := corev1.ResourceList{}
	put := func(name corev1.ResourceName, request, limit resource.Quantity) {
		if limit.Sign() > 0 {
			lim[name] = limit
			if request.Cmp(limit) > 0 {
				request = limit
			}
		}
		if request.Sign() > 0 {
			req[name] = request
		}
	}
	put(corev1.ResourceCPU, r.CPURequest, r.CPULimit)
	put(corev1.ResourceMemory, r.MemoryRequest, r.MemoryLimit)
	out := corev1.ResourceRequirements{}
	if len(req) > 0 {
		out.Requests = req
	}
	if len(lim) > 0 {
		out.Limits = lim
	}
	return out
}

// percentOf returns p percent of q, in whole bytes.
func percentOf(q resource.Quantity, p int64) int64 {
	return q.Value() / 100 * p
}
