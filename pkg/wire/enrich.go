package wire

import (
	"net/netip"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Workload names what an IP belongs to.
type Workload struct {
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	Service   string `json:"service,omitempty"`
	Workload  string `json:"workload,omitempty"`
}

// IPMap maps an IP address, in netip.Addr's text form, to its workload.
// The CLI builds it from the pods and services it watches.
type IPMap map[string]Workload

// Normalize returns a copy of m keyed by canonical addresses (IPv4-mapped
// IPv6 unmapped, zones dropped, IPv6 compressed), without the keys that
// are not addresses, and the number of keys dropped.
func (m IPMap) Normalize() (IPMap, int) {
	out := make(IPMap, len(m))
	bad := 0
	for k, w := range m {
		a, err := netip.ParseAddr(strings.TrimSpace(k))
		if err != nil {
			bad++
			continue
		}
		out[canonical(a)] = w
	}
	return out, bad
}

func canonical(a netip.Addr) string { return a.Unmap().WithZone("").String() }

// Lookup finds ip in a normalized map, whatever form ip is written in.
func (m IPMap) Lookup(ip string) (Workload, bool) {
	if len(m) == 0 || ip == "" {
		return Workload{}, false
	}
	if w, ok := m[ip]; ok {
		return w, true
	}
	// Dissectors write canonical IPv4; only other forms need parsing.
	if strings.IndexByte(ip, ':') < 0 {
		return Workload{}, false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return Workload{}, false
	}
	w, ok := m[canonical(a)]
	return w, ok
}

// Enrich fills the empty workload fields of e's two endpoints from m, and
// reports whether it changed anything. What the capture already knew
// wins over the map.
func Enrich(e *entry.Entry, m IPMap) bool {
	if len(m) == 0 {
		return false
	}
	a := enrichEndpoint(&e.Src, m)
	b := enrichEndpoint(&e.Dst, m)
	return a || b
}

func enrichEndpoint(p *entry.Endpoint, m IPMap) bool {
	w, ok := m.Lookup(p.IP)
	if !ok {
		return false
	}
	changed := fill(&p.Pod, w.Pod)
	changed = fill(&p.Namespace, w.Namespace) || changed
	changed = fill(&p.Node, w.Node) || changed
	changed = fill(&p.Service, w.Service) || changed
	return fill(&p.Workload, w.Workload) || changed
}

func fill(dst *string, v string) bool {
	if *dst != "" || v == "" {
		return false
	}
	*dst = v
	return true
}
