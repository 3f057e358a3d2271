package tracer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The fallback for sockets the kernel side could not resolve (the fd was
// gone, or the fd table walk failed): fd → socket inode through
// /proc/PID/fd, inode → ends through /proc/PID/net/tcp{,6}.

// tupleResolver caches the ends of (pid, fd) by socket inode. It is owned
// by one goroutine.
type tupleResolver struct {
	procRoot string
	cache    map[pidFD]sockEnds
}

type pidFD struct {
	pid uint32
	fd  int32
}

type sockEnds struct {
	inode         uint64
	local, remote netip.AddrPort
}

// maxResolverCache bounds the cache; past it the cache starts over.
const maxResolverCache = 4096

func newTupleResolver(procRoot string) *tupleResolver {
	return &tupleResolver{procRoot: procRoot, cache: map[pidFD]sockEnds{}}
}

func (r *tupleResolver) resolve(ev *Event) bool {
	pid := strconv.FormatUint(uint64(ev.PID), 10)
	link, err := os.Readlink(filepath.Join(r.procRoot, pid, "fd", strconv.Itoa(int(ev.FD))))
	if err != nil {
		return false
	}
	inode, ok := socketInode(link)
	if !ok {
		return false
	}
	k := pidFD{ev.PID, ev.FD}
	if c, ok := r.cache[k]; ok && c.inode == inode {
		ev.Local, ev.Remote = c.local, c.remote
		return true
	}
	for _, name := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(filepath.Join(r.procRoot, pid, "net", name))
		if err != nil {
			continue
		}
		if l, rm, ok := findSocket(data, inode); ok {
			if len(r.cache) >= maxResolverCache {
				clear(r.cache)
			}
			r.cache[k] = sockEnds{inode: inode, local: l, remote: rm}
			ev.Local, ev.Remote = l, rm
			return true
		}
	}
	return false
}

// socketInode parses "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// procTCPLine is one parsed line of /proc/net/tcp or tcp6.
type procTCPLine struct {
	local, remote netip.AddrPort
	state         uint8
	inode         uint64
}

// parseProcTCP calls fn for each well-formed line.
func parseProcTCP(data []byte, fn func(l procTCPLine) bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 512), 64<<10)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 {
			continue
		}
		l, ok1 := parseHexAddrPort(f[1])
		rm, ok2 := parseHexAddrPort(f[2])
		st, err1 := strconv.ParseUint(f[3], 16, 8)
		ino, err2 := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		if !fn(procTCPLine{local: l, remote: rm, state: uint8(st), inode: ino}) {
			return
		}
	}
}

func findSocket(data []byte, inode uint64) (local, remote netip.AddrPort, ok bool) {
	parseProcTCP(data, func(l procTCPLine) bool {
		if l.inode == inode {
			local, remote, ok = l.local, l.remote, true
			return false
		}
		return true
	})
	return
}

// parseHexAddrPort parses "0100007F:1F90": the address as the kernel's
// 32-bit words in host order (little-endian here), the port in hex.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = 0x0a

// ListeningPorts returns the TCP ports with a listening socket in the
// network namespace of process pid: the server side of a connection is the
// end whose local port is one of them.
func ListeningPorts(procRoot string, pid uint32) (map[uint16]bool, error) {
	out := map[uint16]bool{}
	var firstErr error
	read := 0
	for _, name := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "net", name))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		read++
		parseProcTCP(data, func(l procTCPLine) bool {
			if l.state == tcpListen {
				out[l.local.Port()] = true
			}
			return true
		})
	}
	if read == 0 {
		return nil, firstErr
	}
	return out, nil
}
