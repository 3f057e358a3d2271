package worker

import (
	"net/netip"
	"sync/atomic"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// podInfo is what the worker knows of one capture interface: the pod (or
// namespace) it captures.
type podInfo struct {
	index     int // capture interface index
	iface     capture.Interface
	namespace string
	pod       string
	uid       string
	netns     uint64
	sinkIDs   []int // the interface's id in each sink
	ips       atomic.Pointer[[]netip.Addr]
}

func (p *podInfo) addrs() []netip.Addr {
	if a := p.ips.Load(); a != nil {
		return *a
	}
	return nil
}

// table is an immutable snapshot the hot paths read without locks: the
// capture interfaces by index, and the addresses of the attached pods.
type table struct {
	ifaces []*podInfo
	ips    map[netip.Addr]*podInfo
	// byText holds the same addresses as entries spell them, so that
	// annotating an entry need not parse its addresses.
	byText map[string]*podInfo
	// attached counts the namespaces captured now.
	attached int
}

var emptyTable = &table{ips: map[netip.Addr]*podInfo{}}

// tableStore publishes tables.
type tableStore struct{ p atomic.Pointer[table] }

func (s *tableStore) load() *table {
	if t := s.p.Load(); t != nil {
		return t
	}
	return emptyTable
}

// build makes a table of every interface ever attached and the addresses
// of those attached now.
func buildTable(ifaces []*podInfo, attached []*podInfo) *table {
	t := &table{ifaces: ifaces, ips: make(map[netip.Addr]*podInfo), byText: make(map[string]*podInfo), attached: len(attached)}
	for _, p := range attached {
		for _, a := range p.addrs() {
			t.ips[a] = p
			t.byText[a.String()] = p
		}
	}
	return t
}

// skipDissect reports whether a packet captured in netns ino is also
// captured, and dissected, in another targeted namespace: when both ends
// are attached pods of different namespaces, only the namespace of the
// lower address dissects it, so each flow is dissected once, whole, from
// one side.
func (t *table) skipDissect(ino uint64, data []byte) bool {
	if t.attached < 2 {
		return false
	}
	src, dst, ok := ipEnds(data)
	if !ok {
		return false
	}
	ps, pd := t.ips[src], t.ips[dst]
	if ps == nil || pd == nil || ps.netns == pd.netns {
		return false
	}
	owner := ps
	if dst.Less(src) {
		owner = pd
	}
	return owner.netns != ino
}

// annotate fills in the pods of an entry's ends: any address of an
// attached pod, and loopback addresses as the pod of the capture.
func (t *table) annotate(e *entry.Entry, iface int, node string) {
	var own *podInfo
	if iface >= 0 && iface < len(t.ifaces) {
		own = t.ifaces[iface]
	}
	t.endpoint(&e.Src, own, node)
	t.endpoint(&e.Dst, own, node)
}

func (t *table) endpoint(ep *entry.Endpoint, own *podInfo, node string) {
	p, ok := t.byText[ep.IP]
	if !ok {
		a, err := netip.ParseAddr(ep.IP)
		if err != nil {
			return
		}
		p = t.ips[a.Unmap()]
		if p == nil && a.IsLoopback() {
			p = own
		}
	}
	if p == nil || p.pod == "" {
		return
	}
	ep.Pod, ep.Namespace = p.pod, p.namespace
	if node != "" {
		ep.Node = node
	}
}
