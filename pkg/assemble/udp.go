package assemble

import (
	"net/netip"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

type udpKey struct{ a, b netip.AddrPort }

type udpFlow struct {
	flow    *Flow
	h       Handler
	last    time.Time
	dropped bool
}

func (a *Assembler) frameUDP(f *capture.Frame) {
	a.stats.UDPDatagrams++
	src := netip.AddrPortFrom(f.Src, f.SrcPort)
	dst := netip.AddrPortFrom(f.Dst, f.DstPort)
	fromA := true
	u := a.udp[udpKey{src, dst}]
	if u == nil {
		if u = a.udp[udpKey{dst, src}]; u != nil {
			fromA = false
		}
	}
	if u == nil {
		if len(a.udp) >= a.opts.MaxFlows {
			a.stats.FlowsDropped++
			return
		}
		a.stats.UDPFlows++
		u = &udpFlow{flow: a.newFlow("udp", src, dst, f.Timestamp, f.Interface)}
		a.udp[udpKey{src, dst}] = u
		u.h = u.safeNew(a)
	}
	if f.Timestamp.After(u.last) {
		u.last = f.Timestamp
	}
	if !u.dropped && u.h != nil {
		u.datagram(a, fromA, f.Payload, f.Timestamp)
	}
}

func (u *udpFlow) recover(a *Assembler) {
	if r := recover(); r != nil {
		a.stats.Panics++
		u.dropped = true
	}
}

func (u *udpFlow) safeNew(a *Assembler) Handler {
	defer u.recover(a)
	return a.newHandler(u.flow)
}

func (u *udpFlow) datagram(a *Assembler, fromA bool, b []byte, ts time.Time) {
	defer u.recover(a)
	u.h.Datagram(fromA, b, ts)
}

func (u *udpFlow) end(a *Assembler, ts time.Time, reason string) {
	if u.dropped || u.h == nil {
		return
	}
	defer u.recover(a)
	u.h.End(ts, reason)
}

func (a *Assembler) expireUDP(before time.Time) {
	for k, u := range a.udp {
		if u.last.Before(before) {
			u.end(a, a.now, EndTimeout)
			delete(a.udp, k)
		}
	}
}
