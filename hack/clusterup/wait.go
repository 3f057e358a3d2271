package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// waitFor polls check every interval until it reports done, the timeout passes, or
// ctx ends. The last error of check goes into the timeout error, so a failure says
// why it waited in vain.
func waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		done, err := check(ctx)
		if done {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: not ready after %s: %w", what, timeout, last)
			}
			return fmt.Errorf("%s: not ready after %s", what, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// httpsClient trusts ca and presents the client certificate cert/key.
func httpsClient(ca, cert, key string) (*http.Client, error) {
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no certificate", ca)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
			Proxy:           nil, // the cluster is local: never go through a proxy
		},
	}, nil
}

// httpOK is a waitFor check that GET url answers 200.
func httpOK(client *http.Client, url string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return true, nil
	}
}

func (l layout) apiClient() (*http.Client, error) {
	return httpsClient(l.pki("ca.crt"), l.pki("admin.crt"), l.pki("admin.key"))
}

// apiReady is a waitFor check of the API server's /readyz.
func apiReady(l layout) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		c, err := l.apiClient()
		if err != nil {
			return false, err
		}
		return httpOK(c, apiServerURL()+"/readyz")(ctx)
	}
}

// kubectlFlags point kubectl at the cluster and keep its discovery cache in
// .cache, so that no run of it leaves files in the home directory.
func (l layout) kubectlFlags() []string {
	return []string{"--kubeconfig=" + l.kubeconfig, "--cache-dir=" + filepath.Join(l.cache, "cluster", "kubectl-cache")}
}

// kubectl runs the cluster's kubectl with the admin kubeconfig.
func kubectl(ctx context.Context, l layout, a artifacts, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, a.bin("kubectl"), append(l.kubectlFlags(), args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// nodesReady is a waitFor check that every node reports Ready.
func nodesReady(l layout, a artifacts, count int) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		out, err := kubectl(ctx, l, a, "", "get", "nodes", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return false, err
		}
		ready := 0
		for _, line := range strings.Fields(out) {
			if strings.HasSuffix(line, "=True") {
				ready++
			}
		}
		if ready < count {
			return false, fmt.Errorf("ready nodes: %d of %d (%s)", ready, count, strings.Join(strings.Fields(out), " "))
		}
		return true, nil
	}
}

// deploymentAvailable is a waitFor check that a deployment has all replicas ready.
func deploymentAvailable(l layout, a artifacts, ns, name string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		out, err := kubectl(ctx, l, a, "", "-n", ns, "get", "deployment", name, "-o",
			"jsonpath={.status.readyReplicas}/{.spec.replicas}")
		if err != nil {
			return false, err
		}
		parts := strings.Split(strings.TrimSpace(out), "/")
		if len(parts) == 2 && parts[0] != "" && parts[0] == parts[1] {
			return true, nil
		}
		return false, fmt.Errorf("%s/%s ready replicas %s", ns, name, out)
	}
}
