package worker

import (
	"fmt"
	"slices"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
)

// want is a namespace to capture and the target it serves.
type want struct {
	ref    nsRef
	target Target
}

// reconcile attaches the namespaces of the targets and releases the rest.
func (w *Worker) reconcile() {
	desired := w.desired()
	changed := false
	for ino, c := range w.capsSnapshot() {
		if _, ok := desired[ino]; !ok || c.failed.Load() {
			w.detach(c)
			changed = true
		}
	}
	now := time.Now()
	for ino := range w.retry {
		if _, ok := desired[ino]; !ok {
			delete(w.retry, ino)
		}
	}
	for ino, wt := range desired {
		if w.capture(ino) != nil || now.Before(w.retry[ino]) {
			continue
		}
		if err := w.attach(wt); err != nil {
			w.retry[ino] = now.Add(retryAttach)
			w.opts.Logf("cannot capture %s (netns %d): %v", wt.target.DisplayName(), ino, err)
			continue
		}
		delete(w.retry, ino)
		changed = true
	}
	if changed {
		w.publish()
	}
}

// desired resolves the targets to the namespaces they are in now.
func (w *Worker) desired() map[uint64]want {
	out := map[uint64]want{}
	uids := map[string]bool{}
	byUID := map[string]Target{}
	for _, t := range w.Targets() {
		if t.UID != "" {
			uids[t.UID] = true
			byUID[t.UID] = t
			continue
		}
		ino, err := afpacket.NetnsInode(t.Netns)
		if err != nil {
			w.warnOnce("netns:"+t.Netns, "network namespace %s: %v", t.Netns, err)
			continue
		}
		if _, dup := out[ino]; !dup {
			out[ino] = want{ref: nsRef{ino: ino, path: t.Netns}, target: t}
		}
	}
	if len(uids) == 0 {
		return out
	}
	found, err := w.scanner.scan(uids, time.Now())
	if err != nil {
		w.warnOnce("proc", "scanning %s: %v", w.opts.ProcRoot, err)
		return out
	}
	for uid, refs := range found {
		t := byUID[uid]
		own := 0
		for _, ref := range refs {
			// The host's namespace: a hostNetwork pod, or a process still
			// on its way into its pod (runc init).
			if ref.ino == w.selfNetns {
				continue
			}
			own++
			if _, dup := out[ref.ino]; !dup {
				out[ref.ino] = want{ref: ref, target: t}
			}
		}
		if own == 0 {
			w.warnOnce("host:"+uid, "pod %s is in the host network namespace: not captured", t.DisplayName())
		}
	}
	return out
}

func (w *Worker) warnOnce(key, format string, args ...any) {
	if w.warned[key] {
		return
	}
	w.warned[key] = true
	w.opts.Logf(format, args...)
}

func (w *Worker) capsSnapshot() map[uint64]*netnsCapture {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	out := make(map[uint64]*netnsCapture, len(w.caps))
	for k, v := range w.caps {
		out[k] = v
	}
	return out
}

func (w *Worker) capture(ino uint64) *netnsCapture {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	return w.caps[ino]
}

// attach opens a capture in the namespace and starts its reader.
func (w *Worker) attach(wt want) error {
	ns, err := afpacket.OpenNetns(wt.ref.path)
	if err != nil {
		return err
	}
	defer ns.Close()
	if ns.Ino != wt.ref.ino {
		return fmt.Errorf("the process left namespace %d", wt.ref.ino)
	}
	copts := w.opts.Capture
	copts.Interface = wt.target.Interface
	copts.RingSize = w.ringSize()
	h, err := afpacket.Open(ns, copts)
	if err != nil {
		return err
	}
	var ar *addrReader
	if err := ns.Do(func() (err error) { ar, err = openAddrReader(); return err }); err != nil {
		h.Close()
		return err
	}
	t := wt.target
	info := &podInfo{
		index:     len(w.ifaces),
		iface:     capture.Interface{Name: t.DisplayName(), LinkType: capture.LinkRaw, SnapLen: copts.SnapLen},
		namespace: t.Namespace,
		pod:       t.Name,
		uid:       t.UID,
		netns:     ns.Ino,
	}
	for _, s := range w.opts.Sinks {
		info.sinkIDs = append(info.sinkIDs, s.AddInterface(info.iface))
	}
	c := &netnsCapture{w: w, ino: ns.Ino, info: info, target: t, h: h, ar: ar, done: make(chan struct{}),
		behind: newBehindGauge(copts.RingSize, copts.BlockTimeout)}
	c.refreshAddrs()
	w.ifaces = append(w.ifaces, info)
	w.cmu.Lock()
	w.caps[ns.Ino] = c
	w.cmu.Unlock()
	w.publish() // before the reader runs: its interface must exist
	go c.run()
	w.opts.Logf("attached %s (netns %d, addresses %v)", info.iface.Name, ns.Ino, info.addrs())
	return nil
}

// detach stops a capture. Its reader exits within the poll timeout and
// closing the socket takes the kernel a while (synchronize_net), so that
// is finished in the background: the loop moves on at once.
func (w *Worker) detach(c *netnsCapture) {
	c.stop.Store(true)
	w.cmu.Lock()
	delete(w.caps, c.ino)
	w.closing[c] = struct{}{}
	w.cmu.Unlock()
	w.closers.Add(1)
	go func() {
		defer w.closers.Done()
		<-c.done
		c.ar.close()
		w.cmu.Lock()
		delete(w.closing, c)
		w.gone.add(c.counters())
		w.cmu.Unlock()
		if c.err != nil {
			w.opts.Logf("capture of %s failed: %v", c.info.iface.Name, c.err)
		}
		w.opts.Logf("released %s (netns %d)", c.info.iface.Name, c.ino)
	}()
}

// detachAll releases every capture and waits until they are closed.
func (w *Worker) detachAll() {
	for _, c := range w.capsSnapshot() {
		w.detach(c)
	}
	w.closers.Wait()
	w.publish()
}

// publish rebuilds the lookup table of the hot paths.
func (w *Worker) publish() {
	caps := w.capsSnapshot()
	attached := make([]*podInfo, 0, len(caps))
	for _, c := range caps {
		attached = append(attached, c.info)
	}
	w.tables.p.Store(buildTable(slices.Clip(w.ifaces), attached))
}

// periodic polls kernel counters and addresses, and maintains the sinks.
func (w *Worker) periodic() {
	changed := false
	for _, c := range w.capsSnapshot() {
		c.pollKernel()
		if c.refreshAddrs() {
			changed = true
		}
	}
	if changed {
		w.publish()
	}
	for _, s := range w.opts.Sinks {
		if m, ok := s.(Maintainer); ok {
			m.Maintain()
		}
	}
}

// reportDrops logs what was lost since the last report, if anything.
func (w *Worker) reportDrops() {
	now := w.totals()
	d := now.sub(w.lastReport)
	w.lastReport = now
	if d.kernelDrops == 0 && d.corruptLost == 0 && d.dissectDrops == 0 && d.sinkDrops == 0 && d.shed == 0 && d.behind == 0 {
		return
	}
	w.opts.Logf("last %v: %d packets dropped by the kernel (ring full), %d lost in corrupt ring blocks, %d not dissected (queue full), %d not dissected (memory budget), %d not dissected (capture behind), %d not stored (queue full)",
		reportPeriod, d.kernelDrops, d.corruptLost, d.dissectDrops, d.shed, d.behind, d.sinkDrops)
}

// runSinks writes queued batches to every sink.
func (w *Worker) runSinks() {
	for b := range w.sinkQ {
		t := w.tables.load()
		if b.iface < len(t.ifaces) {
			info := t.ifaces[b.iface]
			for i, s := range w.opts.Sinks {
				s.Write(info.sinkIDs[i], b.pkts)
			}
		}
		b.release()
	}
}

// ringSize is the ring of the next capture (see ringShare).
func (w *Worker) ringSize() int {
	w.cmu.Lock()
	n := len(w.caps)
	w.cmu.Unlock()
	c := w.opts.Capture
	return ringShare(w.opts.RingBudget, n, c.RingSize, c.BlockSize)
}
