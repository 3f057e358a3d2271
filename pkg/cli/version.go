package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
	"github.com/kubectl-shark/kubectl-shark/pkg/version"
)

// VersionOptions are the options of `kubectl shark version`.
type VersionOptions struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams

	// Client skips the cluster: only the plugin's own version.
	Client bool
	// Timeout bounds the look for sessions, so that an unreachable cluster
	// costs seconds, not minutes.
	Timeout time.Duration

	client    kubernetes.Interface
	namespace string // the context's namespace: where to look when cluster-wide listing is forbidden
	clientErr error  // why there is no client; reported as a note, never as a failure
}

// NewVersionOptions returns the defaults of `version`.
func NewVersionOptions(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{configFlags: flags, IOStreams: streams, Timeout: 5 * time.Second}
}

// NewCmdVersion returns `kubectl shark version`.
func NewCmdVersion(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(flags, streams)
	cmd := &cobra.Command{
		Use:   "version [--client]",
		Short: "Print the plugin's version, and the agent version of running sessions",
		Long: `version prints the plugin's version. When kubectl shark sessions run in the
current context, it also prints the version of the agent image each one runs,
and warns when it differs from the plugin's. A cluster that cannot be reached
is a note, not an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Complete()
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.Client, "client", o.Client, "print the plugin's version only; do not contact the cluster")
	return cmd
}

// Complete builds the client; a missing or broken kubeconfig is kept for
// Run to report as a note.
func (o *VersionOptions) Complete() {
	if o.Client || o.client != nil {
		return
	}
	cfg, err := o.configFlags.ToRESTConfig()
	if err != nil {
		o.clientErr = err
		return
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = o.Timeout
	}
	if o.client, err = kubernetes.NewForConfig(cfg); err != nil {
		o.clientErr = err
		return
	}
	if ns, _, err := o.configFlags.ToRawKubeConfigLoader().Namespace(); err == nil {
		o.namespace = ns
	}
}

// Run prints the versions. It fails only when it cannot write.
func (o *VersionOptions) Run(ctx context.Context) error {
	if _, err := fmt.Fprintf(o.Out, "kubectl-shark %s (%s/%s, %s)\n",
		version.Version, runtime.GOOS, runtime.GOARCH, runtime.Version()); err != nil {
		return err
	}
	if o.Client {
		return nil
	}
	if o.client == nil {
		fmt.Fprintf(o.ErrOut, "note: no cluster to ask for sessions (%s)\n", oneLine(o.clientErr))
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	hubs, err := o.hubs(ctx)
	if err != nil {
		fmt.Fprintf(o.ErrOut, "note: could not look for running sessions: %s\n", oneLine(err))
		return nil
	}
	return o.report(hubs)
}

// agent is the hub of one running session.
type agent struct {
	session, namespace, pod string
	image, version          string
}

func (o *VersionOptions) hubs(ctx context.Context) ([]agent, error) {
	return listHubs(ctx, o.client, o.namespace)
}

// listHubs lists the hub pods of live sessions in every namespace, or in
// namespace when the user may not list pods cluster-wide (a
// --shark-namespace session lives there).
func listHubs(ctx context.Context, client kubernetes.Interface, namespace string) ([]agent, error) {
	sel := metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s",
		session.LabelManagedBy, session.ManagedByValue, session.LabelComponent, session.ComponentHub)}
	list, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, sel)
	if apierrors.IsForbidden(err) && namespace != "" {
		list, err = client.CoreV1().Pods(namespace).List(ctx, sel)
	}
	if err != nil {
		return nil, err
	}
	var out []agent
	for i := range list.Items {
		if a, ok := hubAgent(&list.Items[i]); ok {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].session < out[j].session })
	return out, nil
}

// hubAgent describes a hub pod that is starting or running.
func hubAgent(p *corev1.Pod) (agent, bool) {
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return agent{}, false
	}
	if len(p.Spec.Containers) == 0 {
		return agent{}, false
	}
	c := p.Spec.Containers[0]
	for _, cc := range p.Spec.Containers {
		if cc.Name == "hub" {
			c = cc
		}
	}
	return agent{
		session:   p.Labels[session.LabelSession],
		namespace: p.Namespace,
		pod:       p.Name,
		image:     c.Image,
		version:   imageTag(c.Image),
	}, true
}

func (o *VersionOptions) report(hubs []agent) error {
	if len(hubs) == 0 {
		_, err := fmt.Fprintf(o.Out, "agent: no session running (new sessions use %s)\n", session.DefaultImage())
		return err
	}
	for _, a := range hubs {
		if _, err := fmt.Fprintf(o.Out, "agent %s: session %s (pod %s/%s, image %s)\n",
			a.version, a.session, a.namespace, a.pod, a.image); err != nil {
			return err
		}
		if a.version != version.Version {
			fmt.Fprintf(o.ErrOut, "warning: session %s runs agent %s but this plugin is %s: end it with `kubectl shark clean` and start a new one\n",
				a.session, a.version, version.Version)
		}
	}
	return nil
}

// imageTag is the tag of an image reference ("latest" when it has none, the
// digest when it is pinned only by digest).
func imageTag(ref string) string {
	name, digest, _ := strings.Cut(ref, "@")
	slash := strings.LastIndexByte(name, '/')
	if colon := strings.LastIndexByte(name, ':'); colon > slash {
		return name[colon+1:]
	}
	if digest != "" {
		return digest
	}
	return "latest"
}

// oneLine keeps the first line of an error, for a one-line note.
func oneLine(err error) string {
	if err == nil {
		err = errors.New("unknown reason")
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
