//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/session"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// TestWorkerSecretPaths: the default --ca-file and --token-file are where
// pkg/session mounts the Secret in worker pods.
func TestWorkerSecretPaths(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{defaultCAFile, filepath.Join(session.TLSMountPath, session.SecretCACert)},
		{defaultTokenFile, filepath.Join(session.TLSMountPath, session.SecretToken)},
	} {
		if tt.got != tt.want {
			t.Errorf("default %q, the session mounts %q", tt.got, tt.want)
		}
	}
}

// TestWorkerHubValidate: --hub's flags fail with one clear line.
func TestWorkerHubValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.crt", string(hubtest.NewPKI(t).CACert))
	notPEM := write("bad.crt", "not a certificate\n")
	tok := write("token", "  abc123\n")
	empty := write("empty", "\n")
	hubArgs := func(more ...string) []string {
		return append([]string{"--hub", "10.0.0.5:8443", "--ca-file", ca, "--token-file", tok}, more...)
	}
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{hubArgs(), ""},
		{[]string{"--hub", "shark-hub:8443", "--ca-file", ca, "--token-file", tok}, ""},
		{[]string{"--hub", "[fd00::5]:8443", "--ca-file", ca, "--token-file", tok}, ""},
		{[]string{"--hub", "10.0.0.5", "--ca-file", ca, "--token-file", tok}, `--hub: "10.0.0.5" is not HOST:PORT (e.g. 10.244.0.12:8443)`},
		{[]string{"--hub", ":8443", "--ca-file", ca, "--token-file", tok}, `--hub: ":8443" is not HOST:PORT`},
		{[]string{"--hub", "h:https", "--ca-file", ca, "--token-file", tok}, `--hub: "h:https": port "https" is not a number from 1 to 65535`},
		{[]string{"--hub", "h:0", "--ca-file", ca, "--token-file", tok}, `--hub: "h:0": port "0" is not a number from 1 to 65535`},
		{[]string{"--hub", "h:8443", "--ca-file", filepath.Join(dir, "missing.crt"), "--token-file", tok},
			"--ca-file: open " + filepath.Join(dir, "missing.crt") + ": no such file or directory"},
		{[]string{"--hub", "h:8443", "--ca-file", notPEM, "--token-file", tok}, "--ca-file " + notPEM + ": wire: no certificate in the session CA file"},
		{[]string{"--hub", "h:8443", "--ca-file", ca, "--token-file", filepath.Join(dir, "none")}, "--token-file: open"},
		{[]string{"--hub", "h:8443", "--ca-file", ca, "--token-file", empty}, "--token-file " + empty + " is empty"},
		{hubArgs("--pod-uid", uid+"=shop/cart"), "--hub takes the targets from the hub: drop --pod-uid and --targets-file"},
		{nil, "worker needs targets: --hub HOST:PORT, --pod-uid UID=namespace/name or --targets-file FILE"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s, _, _ := streams()
			o := NewWorkerOptions(s)
			cmd := newCmdWorker(o)
			if err := cmd.Flags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			o.Complete(cmd, nil)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.hubToken != "abc123" || o.hubTLS == nil || o.hubTLS.ServerName != wire.HubServerName {
					t.Errorf("token %q, TLS %+v", o.hubToken, o.hubTLS)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
		})
	}
}

// TestWorkerHubCommand runs `shark-agent worker --hub` against a real hub:
// it connects with the session's files, stays quiet on stdout, shows under
// its names at the hub, and stops with its context.
func TestWorkerHubCommand(t *testing.T) {
	h := hubtest.Start(t, hub.Options{StatsInterval: 100 * time.Millisecond})
	dir := t.TempDir()
	ca, tok := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
	os.WriteFile(ca, h.PKI.CACert, 0o600)
	os.WriteFile(tok, []byte(h.PKI.Token+"\n"), 0o600)
	s, out, errOut := streams()
	cmd := NewCmdAgent(s)
	cmd.SetArgs([]string{"worker", "--hub", h.WorkerAddr, "--ca-file", ca, "--token-file", tok,
		"--node", "node-7", "--name", "shark-worker-abc", "--no-tls", "--storage-dir", filepath.Join(dir, "store")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	sub, err := h.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	var ss wire.SessionStats
	for len(ss.Workers) == 0 {
		if err := sub.Expect(sctx, wire.TypeStats, &ss); err != nil {
			t.Fatalf("the worker did not show at the hub: %v\n%s", err, errOut)
		}
	}
	if w := ss.Workers[0]; w.Worker != "shark-worker-abc" || w.Node != "node-7" {
		t.Errorf("worker %q on node %q", w.Worker, w.Node)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop with its context")
	}
	if out.Len() != 0 {
		t.Errorf("stdout: %q", out)
	}
	if !strings.Contains(errOut.String(), "connected to the hub "+h.WorkerAddr) {
		t.Errorf("stderr: %s", errOut)
	}
}

// TestWorkerHubBadFlags: through the command, a bad flag is one line and
// nothing runs.
func TestWorkerHubBadFlags(t *testing.T) {
	s, out, _ := streams()
	cmd := NewCmdAgent(s)
	cmd.SetArgs([]string{"worker", "--hub", "10.0.0.5:8443", "--ca-file", "/nonexistent/ca.crt"})
	err := cmd.Execute()
	if err == nil || err.Error() != "--ca-file: open /nonexistent/ca.crt: no such file or directory" {
		t.Errorf("error %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout: %q", out)
	}
}

// TestWorkerPodArgs: the arguments pkg/session gives worker pods are valid
// for this command, with the Secret mounted where the defaults look.
func TestWorkerPodArgs(t *testing.T) {
	opts := session.DefaultOptions()
	opts.Image = "registry.example/shark-agent:test"
	spec, err := session.NewSpec(opts)
	if err != nil {
		t.Fatal(err)
	}
	pod := spec.WorkerPod("node-a", "10.1.2.3", nil)
	c := pod.Spec.Containers[0]
	env := map[string]string{"NODE_NAME": "node-a", "POD_NAME": pod.Name}
	for _, e := range c.Env {
		if e.Value != "" {
			env[e.Name] = e.Value
		}
	}
	var mounted string
	for _, m := range c.VolumeMounts {
		if m.MountPath == filepath.Dir(defaultCAFile) {
			mounted = m.Name
		}
	}
	if mounted == "" {
		t.Fatalf("no volume mounted at %s: %+v", filepath.Dir(defaultCAFile), c.VolumeMounts)
	}
	args := make([]string, 0, len(c.Args))
	for _, a := range c.Args[1:] { // [0] is the subcommand
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		args = append(args, a)
	}
	// The Secret's files, here rather than under /etc/shark/tls.
	dir := t.TempDir()
	ca, tok := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
	os.WriteFile(ca, hubtest.NewPKI(t).CACert, 0o600)
	os.WriteFile(tok, []byte("abc\n"), 0o600)
	args = append(args, "--ca-file", ca, "--token-file", tok)

	s, _, _ := streams()
	o := NewWorkerOptions(s)
	cmd := newCmdWorker(o)
	if c.Args[0] != cmd.Name() {
		t.Fatalf("subcommand %q, want %q", c.Args[0], cmd.Name())
	}
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	t.Setenv("POD_NAME", pod.Name)
	o.Complete(cmd, nil)
	if err := o.Validate(); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if o.Hub != "10.1.2.3:8443" || o.Node != "node-a" || o.Name != pod.Name {
		t.Errorf("hub %q node %q name %q", o.Hub, o.Node, o.Name)
	}
}
