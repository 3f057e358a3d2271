// Package worker is the node agent: it captures the traffic of target pods
// inside their network namespaces (AF_PACKET, one socket per namespace),
// keeps the raw packets in sinks such as a pcap ring store, and dissects
// everything through one pipeline into entries.
//
// Targets come from the caller (the hub in a session, see HubLink; flags or a file standalone) and
// are matched to network namespaces through /proc every ScanInterval, so
// pods that start, restart (a new namespace) or go away are attached or
// released within a second. Capture never waits: each namespace's reader
// queues batches of packets to dissection and to the sinks with
// non-blocking sends, counting what does not fit. With Options.ZeroCopy a
// batch aliases a block of the kernel ring, which goes back to the kernel
// when dissection and the sinks are done with it (they copy what they
// keep); while they hold half the ring or have batches queued, the reader
// copies packets out instead. Over its
// memory budget the worker stops dissecting (the sinks still get every
// packet) until memory comes back down, and counts what it shed.
//
// # Pods and namespaces
//
// A pod's processes carry its UID in their cgroup path, whatever the
// runtime (containerd, CRI-O, Docker), cgroup driver (cgroupfs: pod<uid>,
// systemd: kubepods-<qos>-pod<uid_with_underscores>.slice) or cgroup
// version. All the processes of a pod share its network namespace, so the
// worker keeps one capture per namespace inode. A pod on the host network
// shares the node's namespace and is not captured.
//
// # Attribution
//
// Each namespace is one capture interface (named namespace/pod). The worker
// reads the namespace's addresses through a netlink socket it opened inside
// it, and names the pod of every entry end whose address is an attached
// pod's (loopback ends are the capture's own pod). When both ends of a flow
// are attached pods, only the namespace of the lower address dissects it, so
// that the flow is dissected once and whole; the sinks still get both
// copies, one per pod. Traffic between pods through a Service address is
// seen under two different addresses and shows once per side.
//
// # Bounds
//
// Per namespace: one kernel ring (Options.Capture.RingSize, kernel memory),
// one reader goroutine on an OS thread of its own at a higher priority. Two
// queues of at most QueueBytes each feed dissection and the sinks. The Go
// heap is held to MaxMemory by shedding dissection, and a reader that falls
// a quarter of its ring behind the traffic sheds its dissection too until
// it catches up, so CPU goes to capture first. Everything shed or dropped
// is counted in Stats and the metrics. The interface table grows by one
// small record per namespace ever attached.
package worker
