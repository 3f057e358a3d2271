//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDemo deploys the demo shop and checks, with real clients inside the
// cluster, that every service answers and that loadgen's traffic flows with
// the errors the demo promises: HTTP 404 and 500, gRPC NOT_FOUND and
// FAILED_PRECONDITION behind 404 and 409, declined payments over TLS (402),
// orders through Kafka into PostgreSQL, DNS answers and NXDOMAIN.
func TestDemo(t *testing.T) {
	d := ensureDemo(t)

	t.Run("front answers through catalog over gRPC", func(t *testing.T) {
		tests := []struct {
			path, status, body string
		}{
			{"/api/items/sku-1", "200", `"name":"espresso cup"`},
			{"/api/items/sku-999", "404", `no item with sku \"sku-999\"`}, // gRPC NOT_FOUND
			{"/api/items?category=kitchen", "200", `"sku":"sku-3"`},
			{"/api/boom", "500", "inventory sync failed"},
			{"/nope", "404", "no route for GET /nope"},
			{"/api/cart/e2e-nobody", "200", `"lines":[]`}, // cart over h2c, Redis behind it
		}
		for _, tt := range tests {
			status, body := d.get(t, "http://front"+tt.path)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("GET http://front%s = %s %q, want %s and %q", tt.path, status, body, tt.status, tt.body)
			}
		}
	})

	t.Run("loadgen traffic flows with its errors", func(t *testing.T) {
		before := d.stats(t)
		// Checkouts are 8% of 10 req/s, and most fail (empty cart, stock):
		// wait until every kind of answer has shown up at least once.
		var after loadgenStats
		deadline := time.Now().Add(2 * time.Minute)
		for {
			time.Sleep(5 * time.Second)
			after = d.stats(t)
			if missing := missingStatuses(after); len(missing) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if got := after.Sent - before.Sent; got < 30 {
			t.Errorf("loadgen sent %d requests in the wait, want a steady flow (10/s)", got)
		}
		if missing := missingStatuses(after); len(missing) > 0 {
			t.Errorf("no %v among loadgen's answers %v", missing, after.Status)
		}
		if after.Routes["item-missing"]["404"] == 0 {
			t.Errorf("no gRPC NOT_FOUND turned 404: %v", after.Routes["item-missing"])
		}
		if after.DNS["ok"] == 0 || after.DNS["nxdomain"] == 0 || after.DNS["error"] > 0 {
			t.Errorf("DNS lookups %v: want answers, NXDOMAIN and no errors", after.DNS)
		}
		// Transport errors happen only while a pod restarts; a few in a whole run.
		if after.Status["error"]*20 > after.Sent {
			t.Errorf("%d transport errors in %d requests", after.Status["error"], after.Sent)
		}
		t.Logf("loadgen: %d sent, statuses %v, dns %v", after.Sent, after.Status, after.DNS)
	})

	t.Run("orders reach PostgreSQL through Kafka", func(t *testing.T) {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			out, err := d.kubectl(t, "exec", "deploy/orders", "--", "/demoapp", "get", "http://localhost:8080/stats")
			var s struct{ Stored, Bad int64 }
			if err == nil && json.Unmarshal([]byte(out), &s) == nil && s.Stored > 0 {
				t.Logf("orders stored: %d, bad: %d", s.Stored, s.Bad)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no order stored after 2 min: %v %s", err, out)
			}
			time.Sleep(5 * time.Second)
		}
	})

	t.Run("curl pings secure over OpenSSL TLS", func(t *testing.T) {
		out, err := d.kubectl(t, "logs", "deploy/secure-client", "--tail=5")
		if err != nil || !strings.Contains(out, `"pong":`) || !strings.Contains(out, `"tls":"TLS 1.`) {
			t.Errorf("secure-client logs: %v\n%s", err, out)
		}
	})

	t.Run("pods spread over the nodes", func(t *testing.T) {
		nodes := d.podNodes(t)
		want := []string{"front", "catalog", "cart", "redis", "secure", "secure-client", "loadgen", "kafka", "orders", "postgres"}
		used := map[string]bool{}
		for _, app := range want {
			if nodes[app] == "" {
				t.Errorf("no running pod of %s: %v", app, nodes)
			}
			used[nodes[app]] = true
		}
		if d.Nodes >= 2 && len(used) < 2 {
			t.Errorf("every pod on one node of %d: %v", d.Nodes, nodes)
		}
		t.Logf("pods: %v", nodes)
	})
}

// missingStatuses lists the answers the demo is built to produce that loadgen
// has not seen yet.
func missingStatuses(s loadgenStats) []string {
	var missing []string
	for _, code := range []string{"200", "201", "402", "404", "409", "500"} {
		if s.Status[code] == 0 {
			missing = append(missing, code)
		}
	}
	return missing
}
