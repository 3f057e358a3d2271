package worker

import (
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// addrReader lists the addresses of the network namespace it was opened
// in: a netlink socket belongs to its namespace for life, so the worker
// opens one inside each pod's namespace and asks it again whenever it
// likes, without switching namespaces.
type addrReader struct {
	fd  int
	seq uint32
	buf []byte
}

// openAddrReader opens a NETLINK_ROUTE socket in the calling thread's
// namespace.
func openAddrReader() (*addrReader, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	// A dump never blocks the worker for long.
	tv := unix.NsecToTimeval(int64(time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &addrReader{fd: fd, buf: make([]byte, 32<<10)}, nil
}

// addrs dumps the namespace's global addresses.
func (r *addrReader) addrs() ([]netip.Addr, error) {
	r.seq++
	if err := unix.Sendto(r.fd, addrDumpRequest(r.seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink address dump: %w", err)
	}
	var out []netip.Addr
	for range 1024 { // bounded: a dump of a pod's few addresses is one or two reads
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err != nil {
			return out, fmt.Errorf("netlink address dump: %w", err)
		}
		var done bool
		out, done, err = parseAddrDump(r.buf[:n], out)
		if err != nil {
			return out, fmt.Errorf("netlink address dump: %w", err)
		}
		if done {
			return out, nil
		}
	}
	return out, fmt.Errorf("netlink address dump: no end")
}

func (r *addrReader) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}
