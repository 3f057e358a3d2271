package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// targetsResult answers POST /v1/targets.
type targetsResult struct {
	Targets int `json:"targets"`
	IPs     int `json:"ips"`
	// Ignored counts IP map keys that were not addresses.
	Ignored int `json:"ignored,omitempty"`
}

// serveTargets replaces the targets and the IP map (POST), or shows them
// (GET). Workers get the targets of their node and the whole map.
func (h *server) serveTargets(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		var t wire.Targets
		h.do(func(reg *registry) { t = reg.targets })
		writeJSON(w, http.StatusOK, t)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	var t wire.Targets
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, wire.MaxTargetsBody))
	if err := dec.Decode(&t); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "bad targets: "+err.Error(), status)
		return
	}
	if err := validateTargets(t.Targets); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if t.Targets == nil {
		t.Targets = []wire.Target{}
	}
	m, bad := t.IPMap.Normalize()
	t.IPMap = m
	h.ipmap.Store(&m)
	h.do(func(reg *registry) { reg.setTargets(t) })
	writeJSON(w, http.StatusOK, targetsResult{Targets: len(t.Targets), IPs: len(m), Ignored: bad})
}

func validateTargets(ts []wire.Target) error {
	for i, t := range ts {
		if t.UID == "" || t.Namespace == "" || t.Name == "" {
			return fmt.Errorf("target %d: uid, namespace and name are required", i)
		}
		for _, ip := range t.IPs {
			if _, err := netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("target %s/%s: bad IP %q", t.Namespace, t.Name, ip)
			}
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
