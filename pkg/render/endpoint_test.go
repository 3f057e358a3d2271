package render

import (
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func TestEndpointText(t *testing.T) {
	tests := []struct {
		ep   entry.Endpoint
		want string
	}{
		{entry.Endpoint{IP: "10.89.1.38", Port: 8080, Pod: "front-1", Namespace: "demo", Service: "front"}, "demo/front-1:8080"},
		{entry.Endpoint{IP: "10.96.145.191", Port: 80, Namespace: "demo", Service: "front"}, "demo/svc/front:80"},
		{entry.Endpoint{IP: "10.88.0.1", Port: 10250, Node: "shark-node-1"}, "node/shark-node-1:10250"},
		{entry.Endpoint{IP: "fd00::1", Port: 53}, "[fd00::1]:53"},
		{entry.Endpoint{IP: "10.0.0.9", Port: 5432}, "10.0.0.9:5432"},
	}
	for _, tt := range tests {
		if got := string(appendEndpointText(nil, &tt.ep)); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.ep, got, tt.want)
		}
	}
}
