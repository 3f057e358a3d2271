package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-shark/kubectl-shark/pkg/hubclient"
	"github.com/kubectl-shark/kubectl-shark/pkg/portforward"
	"github.com/kubectl-shark/kubectl-shark/pkg/session"
	"github.com/kubectl-shark/kubectl-shark/pkg/targets"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// sessionFlags are the flags of the commands that run a session in the
// cluster: tap, pcap and ui.
type sessionFlags struct {
	AllNamespaces bool
	Selector      string
	// Session joins a running session instead of starting one.
	Session     string
	DryRun      bool
	ExitIfEmpty bool
	Duration    time.Duration

	opts         session.Options
	pullPolicy   string
	profile      string
	workerCPU    string
	workerMemory string
	storageLimit string
}

func newSessionFlags() *sessionFlags {
	opts := session.DefaultOptions()
	return &sessionFlags{
		opts:         opts,
		pullPolicy:   string(opts.ImagePullPolicy),
		profile:      string(opts.WorkerProfile),
		workerCPU:    opts.Worker.CPULimit.String(),
		workerMemory: opts.Worker.MemoryLimit.String(),
		storageLimit: opts.StorageLimit.String(),
	}
}

func (f *sessionFlags) add(fs *pflag.FlagSet) {
	fs.BoolVarP(&f.AllNamespaces, "all-namespaces", "A", f.AllNamespaces, "capture pods in every namespace")
	fs.StringVarP(&f.Selector, "selector", "l", f.Selector, "only pods with these labels, e.g. app=front,tier!=db")
	fs.StringVar(&f.Session, "session", f.Session, "join the running session with this id instead of starting one")
	fs.BoolVar(&f.DryRun, "dry-run", f.DryRun, "show which pods match, create nothing")
	fs.BoolVar(&f.ExitIfEmpty, "exit-if-empty", f.ExitIfEmpty, "fail when no pod matches, instead of waiting for one")
	fs.DurationVar(&f.Duration, "duration", f.Duration, "stop after this long (0: until Ctrl-C)")
	fs.StringVar(&f.opts.Image, "image", f.opts.Image, "image of the hub and worker pods")
	fs.StringVar(&f.pullPolicy, "image-pull-policy", f.pullPolicy, "pull policy of that image: Always, IfNotPresent, Never")
	fs.StringVar(&f.opts.SharkNamespace, "shark-namespace", f.opts.SharkNamespace, "run the session in this existing namespace instead of creating shark-<id>")
	fs.DurationVar(&f.opts.MaxDuration, "max-duration", f.opts.MaxDuration, "the session's pods end after this long, whatever happens")
	fs.DurationVar(&f.opts.IdleTimeout, "idle-timeout", f.opts.IdleTimeout, "the session removes itself this long after the CLI is gone")
	fs.DurationVar(&f.opts.StartTimeout, "start-timeout", f.opts.StartTimeout, "how long to wait for the hub to start")
	fs.StringVar(&f.workerCPU, "worker-cpu", f.workerCPU, "CPU limit of each worker")
	fs.StringVar(&f.workerMemory, "worker-memory", f.workerMemory, "memory limit of each worker; its dissection sheds load before reaching it")
	fs.StringVar(&f.storageLimit, "storage-limit", f.storageLimit, "size of each worker's raw packet ring (for pcap --since)")
	fs.StringVar(&f.profile, "worker-profile", f.profile, "security profile of the workers: "+strings.Join(profileNames(), ", "))
}

func profileNames() []string {
	var out []string
	for _, p := range session.ProfileNames() {
		out = append(out, string(p))
	}
	return out
}

// options resolves the flags into session options.
func (f *sessionFlags) options() (session.Options, error) {
	o := f.opts
	o.ImagePullPolicy = corev1.PullPolicy(f.pullPolicy)
	o.WorkerProfile = session.ProfileName(f.profile)
	for _, q := range []struct {
		flag, value string
		dst         *resource.Quantity
	}{
		{"--worker-cpu", f.workerCPU, &o.Worker.CPULimit},
		{"--worker-memory", f.workerMemory, &o.Worker.MemoryLimit},
		{"--storage-limit", f.storageLimit, &o.StorageLimit},
	} {
		v, err := resource.ParseQuantity(q.value)
		if err != nil {
			return o, fmt.Errorf("%s %q: %v", q.flag, q.value, err)
		}
		*q.dst = v
	}
	return o, o.Validate()
}

// scope reads the pods the command names: -n (comma-separated, several
// allowed), -A, the positional regex and -l.
func (f *sessionFlags) scope(cf *genericclioptions.ConfigFlags, args []string) (targets.Scope, string, error) {
	current, _, err := cf.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return targets.Scope{}, "", err
	}
	var nss []string
	if cf.Namespace != nil && *cf.Namespace != "" {
		for _, ns := range strings.Split(*cf.Namespace, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				nss = append(nss, ns)
			}
		}
	}
	q := ""
	if len(args) > 0 {
		q = args[0]
	}
	s, err := targets.NewScope(targets.ScopeOptions{
		Namespaces: nss, AllNamespaces: f.AllNamespaces, CurrentNamespace: current,
		PodQuery: q, Selector: f.Selector,
	})
	return s, current, err
}

// errDryRun ends a --dry-run after the preview: not a failure.
var errDryRun = errors.New("dry run")

// live is a session the command runs (or joined), reached through a
// port-forward to its hub.
type live struct {
	flags  *sessionFlags
	cfg    *rest.Config
	client kubernetes.Interface
	mgr    *session.Manager
	scope  targets.Scope
	errOut io.Writer

	sess   *session.Session // nil when joined with --session
	ref    session.Ref
	hubPod string
	token  string
	fwd    *portforward.Forwarder
	hub    *hubclient.Client

	// waiting: no pod to tap, and the user was told.
	waiting bool

	// fatal carries a background failure that must end the command.
	fatal chan error
	wg    sync.WaitGroup
}

// say prints one progress line to stderr.
func (l *live) say(format string, args ...any) {
	fmt.Fprintf(l.errOut, "shark: "+format+"\n", args...)
}

func (l *live) fail(err error) {
	select {
	case l.fatal <- err:
	default:
	}
}

// liveConfig is what a command hands startLive.
type liveConfig struct {
	configFlags *genericclioptions.ConfigFlags
	flags       *sessionFlags
	args        []string
	errOut      io.Writer
}

// prepare builds the client and checks the flags; nothing is created.
func prepare(c liveConfig) (*live, error) {
	scope, current, err := c.flags.scope(c.configFlags, c.args)
	if err != nil {
		return nil, err
	}
	if c.flags.Session == "" {
		if _, err := c.flags.options(); err != nil {
			return nil, err
		}
	}
	cfg, err := c.configFlags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &live{
		flags: c.flags, cfg: cfg, client: client, scope: scope, errOut: c.errOut,
		mgr:   &session.Manager{Client: client, Host: cfg.Host, Namespace: current, WaitTimeout: cleanupWait},
		fatal: make(chan error, 1),
	}, nil
}

// cleanupWait bounds the wait for a session's removal on exit.
const cleanupWait = 30 * time.Second

// start creates the session (or joins one), port-forwards to its hub and,
// for a session of its own, starts following the targets.
func (l *live) start(ctx context.Context) error {
	if l.flags.Session != "" {
		att, err := l.mgr.Attach(ctx, l.flags.Session, l.flags.opts.SharkNamespace)
		if err != nil {
			return err
		}
		l.ref, l.hubPod, l.token = att.Ref, att.HubPod, att.Token
		l.say("joined session %s (namespace %s)", att.ID, att.Namespace)
		return l.connect(ctx)
	}
	opts, err := l.flags.options()
	if err != nil {
		return err
	}
	spec, err := session.NewSpec(opts)
	if err != nil {
		return err
	}
	if err := l.mgr.Preflight(ctx, spec, l.scope.ListNamespaces()); err != nil {
		return err
	}
	initial, err := targets.List(ctx, l.client, l.scope)
	if err != nil {
		return err
	}
	l.preview(initial)
	if l.flags.DryRun {
		return errDryRun
	}
	if len(initial) == 0 && l.flags.ExitIfEmpty {
		return fmt.Errorf("no pod matches %s (--exit-if-empty)", l.scope)
	}
	l.say("starting session %s in namespace %s", spec.ID, spec.Namespace)
	sess, err := l.mgr.Start(ctx, spec, l.progress)
	if err != nil {
		return err
	}
	l.sess, l.ref, l.hubPod, l.token = sess, sess.Ref(), spec.HubPodName(), sess.Token
	if err := l.connect(ctx); err != nil {
		return err
	}
	l.wg.Add(2)
	go func() { defer l.wg.Done(); l.followTargets(ctx) }()
	go func() { defer l.wg.Done(); l.watchWorkers(ctx) }()
	return nil
}

// begin starts the session (see start) and returns the context of the
// command's run, which ends at --duration. Defer l.close in any case.
func (l *live) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := l.start(ctx); err != nil {
		return nil, nil, err
	}
	if l.flags.Duration > 0 {
		runCtx, cancel := context.WithTimeout(ctx, l.flags.Duration)
		return runCtx, cancel, nil
	}
	runCtx, cancel := context.WithCancel(ctx)
	return runCtx, cancel, nil
}

// ignoreDryRun: the end of a --dry-run is a success.
func ignoreDryRun(err error) error {
	if errors.Is(err, errDryRun) {
		return nil
	}
	return err
}

// preview says which pods match, before anything is created.
func (l *live) preview(ts []targets.Target) {
	if len(ts) == 0 {
		l.say("no pod matches %s yet; waiting for one (Ctrl-C to stop)", l.scope)
		return
	}
	const show = 20
	l.say("%d pods match %s:", len(ts), l.scope)
	for i, t := range ts {
		if i == show {
			l.say("  ... and %d more", len(ts)-show)
			break
		}
		note := ""
		switch {
		case t.HostNetwork:
			note = " (host network: skipped)"
		case !t.Running:
			note = " (not running yet)"
		}
		l.say("  %s/%s on %s%s", t.Namespace, t.Name, orNone(t.Node), note)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(no node yet)"
	}
	return s
}

// progress reports the steps of Start that a user waits on.
func (l *live) progress(p session.Progress) {
	if p.State == "applied" {
		return
	}
	l.say("%s", p)
}

// connect port-forwards to the hub and waits until it answers.
func (l *live) connect(ctx context.Context) error {
	fwd, err := portforward.New(l.cfg, l.client, l.ref.Namespace, l.hubPod, session.HubAPIPort)
	if err != nil {
		return err
	}
	l.fwd = fwd
	l.hub = hubclient.New(net.JoinHostPort(session.HubServerName, strconv.Itoa(session.HubAPIPort)), l.token, fwd.Dial)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = l.hub.Heartbeat(cctx)
		cancel()
		if err == nil || hubclient.IsUnauthorized(err) || ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("reach the hub of session %s: %w", l.ref.ID, err)
	}
	return nil
}

// close stops the background work and, for a session of its own, removes
// it and waits (bounded) until it is gone. A second Ctrl-C stops waiting:
// the hub then removes the session itself after its idle timeout.
func (l *live) close() {
	if l.fwd != nil {
		defer l.fwd.Close()
	}
	l.wg.Wait()
	if l.sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupWait)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	go func() {
		select {
		case <-sig:
			cancel()
		case <-ctx.Done():
		}
	}()
	l.say("removing session %s ...", l.ref.ID)
	start := time.Now()
	if err := l.sess.Close(ctx, true); err != nil {
		l.say("could not remove session %s: %v; its hub removes it %s after this exit, or run: kubectl shark clean",
			l.ref.ID, err, l.flags.opts.IdleTimeout)
		return
	}
	l.say("session %s removed (%.1fs)", l.ref.ID, time.Since(start).Seconds())
}

// Target following: how long changes are gathered before they are pushed,
// and how often the IP map is refreshed (services and pods out of scope
// change too).
var (
	pushDelay   = 200 * time.Millisecond
	ipmapPeriod = 15 * time.Second
)

// followTargets watches the pods in scope, keeps one worker on each node
// that hosts one, and tells the hub the targets and the IP map.
func (l *live) followTargets(ctx context.Context) {
	events, err := targets.Watch(ctx, l.client, l.scope)
	if err != nil {
		l.fail(fmt.Errorf("watch pods: %w", err))
		return
	}
	resolver := &targets.Resolver{Client: l.client}
	if !l.scope.AllNamespaces() {
		resolver.Namespaces = l.scope.Namespaces
	}
	known := map[types.UID]targets.Target{}
	tapped := map[types.UID]bool{}
	var ipmap wire.IPMap
	push := time.NewTimer(time.Hour)
	push.Stop()
	refresh := time.NewTicker(ipmapPeriod)
	defer refresh.Stop()
	pending, pendingMap := false, true
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Type == targets.Deleted {
				delete(known, ev.Target.UID)
			} else {
				known[ev.Target.UID] = ev.Target
			}
			if !pending {
				pending = true
				push.Reset(pushDelay)
			}
			continue
		case <-refresh.C:
			pendingMap = true
		case <-push.C:
			pending = false
			pendingMap = true // new pods have new IPs
		}
		live := capturable(known)
		l.reportTargets(live, tapped)
		if err := l.sess.SyncWorkers(ctx, targets.Nodes(live)); err != nil && ctx.Err() == nil {
			l.say("warning: %v", err)
		}
		if pendingMap {
			m, err := resolver.Load(ctx)
			if err != nil {
				if ctx.Err() == nil {
					l.say("warning: naming pods: %v", err)
				}
			} else {
				ipmap, pendingMap = toWireIPMap(m), false
			}
		}
		if err := l.hub.PostTargets(ctx, wire.Targets{Targets: toWireTargets(live), IPMap: ipmap}); err != nil && ctx.Err() == nil {
			l.say("warning: telling the hub the targets: %v (retrying)", err)
			pending = true
			push.Reset(time.Second)
		}
	}
}

// capturable are the targets a worker can attach to now: running, on a
// node, and with a network namespace of their own.
func capturable(known map[types.UID]targets.Target) []targets.Target {
	var out []targets.Target
	for _, t := range known {
		if t.Running && !t.Terminating && !t.HostNetwork && t.Node != "" {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b targets.Target) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

// reportTargets says which pods start and stop being tapped.
func (l *live) reportTargets(now []targets.Target, tapped map[types.UID]bool) {
	seen := map[types.UID]bool{}
	for _, t := range now {
		seen[t.UID] = true
		if !tapped[t.UID] {
			l.say("tapping %s on %s", t.Key(), t.Node)
			tapped[t.UID] = true
		}
	}
	for uid := range tapped {
		if !seen[uid] {
			delete(tapped, uid)
		}
	}
	if len(now) == 0 && !l.waiting {
		l.say("no running pod matches %s; waiting", l.scope)
	}
	l.waiting = len(now) == 0
}

func toWireTargets(ts []targets.Target) []wire.Target {
	out := make([]wire.Target, 0, len(ts))
	for _, t := range ts {
		out = append(out, wire.Target{UID: string(t.UID), Namespace: t.Namespace, Name: t.Name, IPs: t.IPs, Node: t.Node})
	}
	return out
}

func toWireIPMap(m targets.IPMap) wire.IPMap {
	out := make(wire.IPMap, len(m))
	for ip, w := range m {
		out[ip] = wire.Workload(w)
	}
	return out
}

// Worker watching: how often worker pods are read, and how long an image
// pull may fail before the session gives up.
var (
	workerPoll  = 2 * time.Second
	pullTimeout = 20 * time.Second
)

// watchWorkers says what each worker waits on, once per change, and ends
// the command when one cannot start (its image cannot be pulled, it
// crashes).
func (l *live) watchWorkers(ctx context.Context) {
	said := map[string]string{}
	pullSince := map[string]time.Time{}
	t := time.NewTicker(workerPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		states, err := l.sess.WorkerStates(ctx)
		if err != nil {
			continue
		}
		for _, w := range states {
			msg := "ready"
			if !w.Ready {
				msg = w.Reason
				if w.Message != "" {
					msg += ": " + w.Message
				}
			}
			if said[w.Pod] != msg {
				said[w.Pod] = msg
				if w.Ready {
					l.say("worker on %s is capturing", w.Node)
				} else {
					l.say("worker on %s waiting: %s", w.Node, msg)
				}
			}
			switch {
			case w.Fatal:
				l.fail(fmt.Errorf("the worker on node %s cannot run: %s", w.Node, msg))
				return
			case w.PullFailed:
				if pullSince[w.Pod].IsZero() {
					pullSince[w.Pod] = time.Now()
				} else if time.Since(pullSince[w.Pod]) > pullTimeout {
					l.fail(fmt.Errorf("the worker on node %s cannot pull its image %s: %s", w.Node, l.flags.opts.Image, msg))
					return
				}
			default:
				delete(pullSince, w.Pod)
			}
		}
	}
}
