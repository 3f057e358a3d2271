//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestHubCommand runs `shark-agent hub` as the session's pod spec does, with
// the Secret's files, and checks that it serves and guards its API.
func TestHubCommand(t *testing.T) {
	dir := t.TempDir()
	pki, err := session.NewPKI("shark-test01", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	token, err := session.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"hub.crt": pki.HubCert, "hub.key": pki.HubKey, "token": []byte(token)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	api := freeAddr(t)
	var out, errOut bytes.Buffer
	cmd := NewCmdAgent(IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"hub", "--listen-worker=" + freeAddr(t), "--listen-api=" + api,
		"--session=test01", "--namespace=shark-test01", "--tls-dir=" + dir, "--self-delete=none"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	get := func(path, tok string) int {
		req, _ := http.NewRequest("GET", "http://"+api+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for get(wire.PathHealthz, "") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("hub not serving: %s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := get(wire.PathMetrics, ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without token: %d, want 401", code)
	}
	if code := get(wire.PathMetrics, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("metrics with a wrong token: %d, want 401", code)
	}
	if code := get(wire.PathMetrics, token); code != http.StatusOK {
		t.Errorf("metrics with the token: %d, want 200", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("hub exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hub did not stop")
	}
}

func TestHubSelfDeleteNeedsCluster(t *testing.T) {
	o := NewHubOptions(IOStreams{ErrOut: os.Stderr})
	o.Session, o.Namespace = "abc", "shark-abc"
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if o.SelfDelete != "namespace" {
		t.Errorf("auto chose %q for a session namespace, want namespace", o.SelfDelete)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if err := o.Validate(); err == nil {
		t.Errorf("Validate outside a cluster succeeded; want an error that names --self-delete=none")
	}
}
