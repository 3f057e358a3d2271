// Package tracer is the eBPF source of TLS plaintext: uprobes on OpenSSL's
// (and BoringSSL's) SSL_write, SSL_read, SSL_write_ex and SSL_read_ex, and
// on Go's crypto/tls (*Conn).Write and Read, copy what applications hand to
// their TLS library, or get from it, before encryption and after
// decryption. Each chunk carries the process, thread, fd, the socket's
// ends, the network namespace and the cgroup, so that the worker can feed
// it to the same dissectors as captured packets and name the pod.
//
// The programs live in bpf/tls.bpf.c and are compiled by bpf2go (make
// generate) into the committed tls_*_bpfel.{go,o}; they are CO-RE, so one
// object runs on any kernel with BTF. New probes the kernel and the
// privileges first and returns an error wrapping ErrUnavailable that says,
// in one line, what is missing; callers go on without TLS plaintext.
//
// Probes attach to files (inodes), found through /proc/PID/maps of the
// processes in the traced network namespaces and opened through
// /proc/PID/root, so containers' libraries and statically linked binaries
// with symbols are covered. Go functions get an entry probe and a probe on
// every return instruction, found by disassembly (uretprobes corrupt Go's
// movable stacks); the register ABI (Go 1.17+) is required.
//
// Bounds: each call yields at most MaxChunks events of MaxData bytes (the
// rest is counted in Stats.TruncatedBytes), events cross a ring buffer of
// Options.RingBytes (losses counted in Stats.RingFull), and the kernel-side
// tables of calls in flight are fixed-size hash maps.
package tracer
