package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// UIOptions are the options of `kubectl shark ui`.
type UIOptions struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams

	Address   string
	Port      int
	NoBrowser bool
	Filter    string

	session *sessionFlags
	args    []string
}

// NewUIOptions returns the defaults of `ui`.
func NewUIOptions(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *UIOptions {
	return &UIOptions{configFlags: flags, IOStreams: streams, Address: "127.0.0.1", Port: 8899, session: newSessionFlags()}
}

// NewCmdUI returns `kubectl shark ui`.
func NewCmdUI(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewUIOptions(flags, streams)
	cmd := &cobra.Command{
		Use:   "ui [POD-REGEX] [-n NS[,NS...]] [-A] [-l SELECTOR] [--port 8899] [--no-browser] [--session ID]",
		Short: "Open the dashboard of a session: live traffic, details, service map",
		Long: `ui starts a session for the pods you name (or joins a running one with
--session), forwards a local port to its hub, prints the dashboard's address and
opens it in the browser. The forward is re-established by itself when it drops.
Ctrl-C removes the session it started.`,
		Example: `  # The dashboard of namespace demo
  kubectl shark ui -n demo

  # Join the session a tap started, on another port, without a browser
  kubectl shark ui --session abc123 --port 9000 --no-browser`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.args = args
			if o.Port < 0 || o.Port > 65535 {
				return fmt.Errorf("--port %d: want 0..65535", o.Port)
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Address, "address", o.Address, "local address to listen on")
	f.IntVar(&o.Port, "port", o.Port, "local port of the dashboard (0: any free port)")
	f.BoolVar(&o.NoBrowser, "no-browser", o.NoBrowser, "print the address, do not open a browser")
	f.StringVar(&o.Filter, "filter", o.Filter, "the dashboard's initial CEL filter")
	o.session.add(f)
	return cmd
}

// Run serves the dashboard until Ctrl-C or --duration.
func (o *UIOptions) Run(ctx context.Context) error {
	l, err := prepare(liveConfig{configFlags: o.configFlags, flags: o.session, args: o.args, errOut: o.ErrOut})
	if err != nil {
		return err
	}
	// Listen first: a port in use should fail before a session exists.
	ln, err := net.Listen("tcp", net.JoinHostPort(o.Address, strconv.Itoa(o.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d on %s is in use: choose another with --port (0 picks a free one)", o.Port, o.Address)
		}
		return err
	}
	defer ln.Close()
	runCtx, cancel, err := l.begin(ctx)
	defer l.close()
	if err != nil {
		return ignoreDryRun(err)
	}
	defer cancel()
	go l.fwd.Serve(runCtx, ln, func(err error) { l.say("warning: %v", err) })
	u := o.dashboardURL(ln.Addr().(*net.TCPAddr).Port, l.token)
	fmt.Fprintf(o.Out, "Dashboard: %s\n", u)
	if !o.NoBrowser {
		if err := openBrowser(u); err != nil {
			l.say("could not open a browser (%v): open the address above", err)
		}
	}
	l.say("session %s; Ctrl-C to stop", l.ref.ID)
	err = o.keepAlive(runCtx, l)
	return ignoreEnd(err)
}

// dashboardURL carries the token once: the hub turns it into a cookie and
// redirects to the same page without it.
func (o *UIOptions) dashboardURL(port int, token string) string {
	q := url.Values{wire.TokenQuery: {token}}
	if o.Filter != "" {
		q.Set("filter", o.Filter)
	}
	host := o.Address
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/?" + q.Encode()
}

// keepAlive sends heartbeats while the command runs, so the session lives
// even when no browser is open, and ends on a fatal session error.
func (o *UIOptions) keepAlive(ctx context.Context, l *live) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	failing := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-l.fatal:
			return err
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		err := l.hub.Heartbeat(hctx)
		cancel()
		switch {
		case err == nil:
			failing = time.Time{}
		case failing.IsZero():
			failing = time.Now()
			l.say("warning: the hub does not answer (%v); retrying", err)
		case time.Since(failing) > l.flags.opts.IdleTimeout:
			return fmt.Errorf("the hub of session %s has not answered for %s: %w", l.ref.ID, l.flags.opts.IdleTimeout, err)
		}
	}
}

// openBrowser opens u with the platform's opener.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
