package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
)

// completionTimeout bounds the API calls behind one <TAB>: a shell that
// hangs on an unreachable cluster is worse than no suggestions.
const completionTimeout = 5 * time.Second

// podArgCommands take a pod-name regex as their argument.
var podArgCommands = map[string]bool{"tap": true, "pcap": true, "ui": true}

// registerCompletions adds shell completion to the command tree under root:
// namespaces for --namespace and --shark-namespace; contexts, clusters and
// users from the kubeconfig; pod names for the REGEX of tap, pcap and ui.
// Call it once every subcommand has been added.
func registerCompletions(root *cobra.Command, f *genericclioptions.ConfigFlags) {
	newCompleter(f).register(root)
}

// completer answers completions from the user's kubeconfig and cluster.
type completer struct {
	flags *genericclioptions.ConfigFlags
	// client builds the API client; tests put a fake clientset here.
	client  func() (kubernetes.Interface, error)
	timeout time.Duration
}

func newCompleter(f *genericclioptions.ConfigFlags) *completer {
	c := &completer{flags: f, timeout: completionTimeout}
	c.client = c.realClient
	return c
}

func (c *completer) register(root *cobra.Command) {
	for name, fn := range map[string]cobra.CompletionFunc{
		"namespace": c.namespaces,
		"context":   c.contexts,
		"cluster":   c.clusters,
		"user":      c.users,
	} {
		registerFlag(root, name, fn)
	}
	for _, sub := range root.Commands() {
		if podArgCommands[sub.Name()] && sub.ValidArgsFunction == nil {
			sub.ValidArgsFunction = c.pods
		}
		registerFlag(sub, "shark-namespace", c.namespaces)
		registerFlag(sub, "session", c.sessions)
	}
}

// registerFlag adds fn to a flag the command has. A command that completes
// the flag itself keeps its own function (cobra refuses a second one).
func registerFlag(cmd *cobra.Command, flag string, fn cobra.CompletionFunc) {
	if cmd.Flag(flag) == nil {
		return
	}
	if err := cmd.RegisterFlagCompletionFunc(flag, fn); err != nil {
		cobra.CompDebugln(fmt.Sprintf("completion of --%s: %v", flag, err), false)
	}
}

// realClient talks to the cluster with a short request timeout, unless the
// user chose one with --request-timeout.
func (c *completer) realClient() (kubernetes.Interface, error) {
	cfg, err := c.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = c.timeout
	}
	return kubernetes.NewForConfig(cfg)
}

func (c *completer) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, c.timeout)
}

// pods completes the first argument with the names of the pods in scope:
// the namespaces of -n (a comma-separated list) or of the context, or every
// namespace with -A, narrowed by -l. Pods of kubectl shark's own sessions are
// left out.
func (c *completer) pods(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	client, err := c.client()
	if err != nil {
		return debug("pods", err)
	}
	selector := session.LabelManagedBy + "!=" + session.ManagedByValue
	if l := flagValue(cmd, "selector"); l != "" {
		selector += "," + l
	}
	namespaces := c.podNamespaces(cmd)
	ctx, cancel := c.context(cmd)
	defer cancel()
	var out []cobra.Completion
	for _, ns := range namespaces {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return debug("pods", err)
		}
		for _, p := range list.Items {
			if !strings.HasPrefix(p.Name, toComplete) || p.DeletionTimestamp != nil {
				continue
			}
			if len(namespaces) > 1 || ns == metav1.NamespaceAll {
				out = append(out, cobra.CompletionWithDesc(p.Name, "namespace "+p.Namespace))
			} else {
				out = append(out, p.Name)
			}
		}
	}
	return sortedUnique(out), cobra.ShellCompDirectiveNoFileComp
}

// podNamespaces are the namespaces the command would capture in, the way
// its options resolve them; [""] (all) with -A.
func (c *completer) podNamespaces(cmd *cobra.Command) []string {
	if flagValue(cmd, "all-namespaces") == "true" {
		return []string{metav1.NamespaceAll}
	}
	var out []string
	if c.flags.Namespace != nil {
		for _, ns := range strings.Split(*c.flags.Namespace, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				out = append(out, ns)
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	ns, _, err := c.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil || ns == "" {
		ns = metav1.NamespaceDefault
	}
	return []string{ns}
}

func flagValue(cmd *cobra.Command, name string) string {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// sessions completes --session with the ids of running sessions.
func (c *completer) sessions(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	client, err := c.client()
	if err != nil {
		return debug("sessions", err)
	}
	ctx, cancel := c.context(cmd)
	defer cancel()
	hubs, err := listHubs(ctx, client, c.currentNamespace())
	if err != nil {
		return debug("sessions", err)
	}
	var out []cobra.Completion
	for _, h := range hubs {
		if strings.HasPrefix(h.session, toComplete) {
			out = append(out, cobra.CompletionWithDesc(h.session, "agent "+h.version+" in "+h.namespace))
		}
	}
	return sortedUnique(out), cobra.ShellCompDirectiveNoFileComp
}

func (c *completer) currentNamespace() string {
	ns, _, err := c.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return ""
	}
	return ns
}

// namespaces completes namespace names. A user who may not list namespaces
// still gets the namespace of the current context.
func (c *completer) namespaces(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	names, err := c.namespaceNames(cmd)
	if err != nil {
		cobra.CompDebugln("namespaces: "+err.Error(), false)
		if ns, _, nerr := c.flags.ToRawKubeConfigLoader().Namespace(); nerr == nil && ns != "" {
			names = []string{ns}
		}
	}
	// -n takes a comma-separated list: complete its last element.
	done, partial := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done, partial = toComplete[:i+1], toComplete[i+1:]
	}
	out := withPrefix(names, partial)
	for i := range out {
		out[i] = done + out[i]
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (c *completer) namespaceNames(cmd *cobra.Command) ([]string, error) {
	client, err := c.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.context(cmd)
	defer cancel()
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names, nil
}

// contexts, clusters and users complete from the kubeconfig alone.
func (c *completer) contexts(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return c.fromKubeconfig(toComplete, func(cfg kubeconfigNames) []string { return cfg.contexts })
}

func (c *completer) clusters(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return c.fromKubeconfig(toComplete, func(cfg kubeconfigNames) []string { return cfg.clusters })
}

func (c *completer) users(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return c.fromKubeconfig(toComplete, func(cfg kubeconfigNames) []string { return cfg.users })
}

type kubeconfigNames struct{ contexts, clusters, users []string }

func (c *completer) fromKubeconfig(toComplete string, pick func(kubeconfigNames) []string) ([]cobra.Completion, cobra.ShellCompDirective) {
	raw, err := c.flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return debug("kubeconfig", err)
	}
	var n kubeconfigNames
	for name := range raw.Contexts {
		n.contexts = append(n.contexts, name)
	}
	for name := range raw.Clusters {
		n.clusters = append(n.clusters, name)
	}
	for name := range raw.AuthInfos {
		n.users = append(n.users, name)
	}
	return withPrefix(pick(n), toComplete), cobra.ShellCompDirectiveNoFileComp
}

func withPrefix(names []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return sortedUnique(out)
}

func sortedUnique(s []cobra.Completion) []cobra.Completion {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// debug logs why there are no suggestions (to $BASH_COMP_DEBUG_FILE): the
// shell shows nothing rather than an error in the middle of the prompt.
func debug(what string, err error) ([]cobra.Completion, cobra.ShellCompDirective) {
	cobra.CompDebugln(what+": "+err.Error(), false)
	return nil, cobra.ShellCompDirectiveNoFileComp
}
