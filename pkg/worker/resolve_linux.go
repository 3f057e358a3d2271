package worker

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// procScanner finds the network namespaces of pods from /proc: a process
// whose cgroup path names a pod UID runs in that pod, and its
// /proc/PID/ns/net is the pod's namespace.
//
// Reading every process's cgroup file on every scan would cost tens of
// milliseconds on a busy node, so it caches what each PID says: a PID is
// read when it first appears and on the next few scans (a new process may
// still be moving into its cgroup), then only on a full rescan every
// fullRescan (which also catches a PID reused between two scans).
type procScanner struct {
	root    string
	cache   map[int]*procEntry
	buf     []byte
	last    time.Time // last full rescan
	scanned uint64    // scans so far
}

type procEntry struct {
	uid   string // pod UID, or ""
	netns uint64 // when uid != ""
	reads int
	seen  uint64 // scan number that last listed it
}

const (
	youngReads = 8 // a new PID's cgroup is read on this many scans
	fullRescan = 10 * time.Second
)

// nsRef is one network namespace of a pod and a path that opens it.
type nsRef struct {
	ino  uint64
	path string
}

func newProcScanner(root string) *procScanner {
	return &procScanner{root: root, cache: make(map[int]*procEntry), buf: make([]byte, 8<<10)}
}

// scan returns, for each wanted pod UID that has processes, the distinct
// network namespaces they are in.
func (s *procScanner) scan(wanted map[string]bool, now time.Time) (map[string][]nsRef, error) {
	pids, err := s.pids()
	if err != nil {
		return nil, err
	}
	s.scanned++
	full := now.Sub(s.last) >= fullRescan
	if full {
		s.last = now
	}
	out := map[string][]nsRef{}
	for _, pid := range pids {
		e := s.cache[pid]
		if e == nil {
			e = &procEntry{}
			s.cache[pid] = e
		}
		e.seen = s.scanned
		if full || e.reads < youngReads {
			e.reads++
			e.uid = s.podUID(pid)
		}
		if e.uid == "" || !wanted[e.uid] {
			continue
		}
		// The namespace of a pod's process is checked every scan: cheap,
		// and only for the few processes of target pods.
		path := s.root + "/" + strconv.Itoa(pid) + "/ns/net"
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil {
			continue // exited
		}
		e.netns = st.Ino
		if !hasIno(out[e.uid], st.Ino) {
			out[e.uid] = append(out[e.uid], nsRef{ino: st.Ino, path: path})
		}
	}
	for pid, e := range s.cache {
		if e.seen != s.scanned {
			delete(s.cache, pid)
		}
	}
	return out, nil
}

func hasIno(refs []nsRef, ino uint64) bool {
	for _, r := range refs {
		if r.ino == ino {
			return true
		}
	}
	return false
}

// pids lists the numeric entries of the proc root: thread group leaders.
func (s *procScanner) pids() ([]int, error) {
	f, err := os.Open(s.root)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '1' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// podUID reads /proc/PID/cgroup into the scanner's buffer.
func (s *procScanner) podUID(pid int) string {
	fd, err := unix.Open(s.root+"/"+strconv.Itoa(pid)+"/cgroup", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	n := 0
	for n < len(s.buf) {
		m, err := unix.Read(fd, s.buf[n:])
		if m <= 0 || err != nil {
			break
		}
		n += m
	}
	return podUIDFromCgroup(s.buf[:n])
}
