package worker

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeProc is a proc tree of regular files: each "ns/net" file's inode
// stands for a namespace.
type fakeProc struct {
	t    *testing.T
	root string
	ns   map[string]string // namespace name → file holding its inode
}

func newFakeProc(t *testing.T) *fakeProc {
	return &fakeProc{t: t, root: t.TempDir(), ns: map[string]string{}}
}

func (f *fakeProc) nsIno(name string) uint64 {
	p, ok := f.ns[name]
	if !ok {
		p = filepath.Join(f.root, "ns-"+name)
		os.WriteFile(p, nil, 0o600)
		f.ns[name] = p
	}
	var st unix.Stat_t
	unix.Stat(p, &st)
	return st.Ino
}

func (f *fakeProc) proc(pid int, cgroup, netns string) {
	dir := filepath.Join(f.root, strconv.Itoa(pid))
	os.MkdirAll(filepath.Join(dir, "ns"), 0o700)
	os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o600)
	f.nsIno(netns)
	os.Remove(filepath.Join(dir, "ns", "net"))
	if err := os.Link(f.ns[netns], filepath.Join(dir, "ns", "net")); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) exit(pid int) { os.RemoveAll(filepath.Join(f.root, strconv.Itoa(pid))) }

func inos(refs []nsRef) []uint64 {
	var out []uint64
	for _, r := range refs {
		out = append(out, r.ino)
	}
	return out
}

func TestProcScanner(t *testing.T) {
	fp := newFakeProc(t)
	other := "0123456789abcdef0123456789abcdef"
	fp.proc(1, "0::/init.scope\n", "host")
	fp.proc(100, "0::/kubepods/besteffort/pod"+uid+"/pause\n", "podA")
	fp.proc(101, "12:pids:/kubepods/besteffort/pod"+uid+"/app\n0::/\n", "podA")
	fp.proc(200, "0::/kubepods.slice/kubepods-pod"+other+".slice/cri-containerd-1.scope\n", "podB")
	s := newProcScanner(fp.root)
	now := time.Unix(1000, 0)
	wanted := map[string]bool{uid: true}

	got, err := s.scan(wanted, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[uid]) != 1 || got[uid][0].ino != fp.nsIno("podA") {
		t.Fatalf("scan: %+v", got)
	}

	// A new process first appears outside its cgroup, then moves in.
	fp.proc(300, "0::/user.slice\n", "podC")
	now = now.Add(250 * time.Millisecond)
	s.scan(wanted, now)
	fp.proc(300, "0::/kubepods/pod"+uid+"/x\n", "podC")
	now = now.Add(250 * time.Millisecond)
	got, _ = s.scan(wanted, now)
	if len(got[uid]) != 2 {
		t.Fatalf("moved process not found: %v", inos(got[uid]))
	}

	// The pod's old processes exit: only the new namespace remains.
	fp.exit(100)
	fp.exit(101)
	now = now.Add(250 * time.Millisecond)
	got, _ = s.scan(wanted, now)
	if ns := inos(got[uid]); len(ns) != 1 || ns[0] != fp.nsIno("podC") {
		t.Fatalf("after exit: %v", ns)
	}
	if _, ok := s.cache[100]; ok {
		t.Error("exited pid still cached")
	}

	// Other targets resolve from the cache, without a new read.
	got, _ = s.scan(map[string]bool{other: true}, now.Add(time.Millisecond))
	if ns := inos(got[other]); len(ns) != 1 || ns[0] != fp.nsIno("podB") {
		t.Fatalf("second target: %v", ns)
	}

	// An old PID that changes cgroup is seen again on the full rescan.
	for i := 0; i < youngReads; i++ {
		now = now.Add(250 * time.Millisecond)
		s.scan(wanted, now)
	}
	fp.proc(1, "0::/kubepods/pod"+uid+"/late\n", "podD")
	now = now.Add(250 * time.Millisecond)
	got, _ = s.scan(wanted, now)
	if len(got[uid]) != 1 {
		t.Fatalf("old pid re-read before the full rescan: %v", inos(got[uid]))
	}
	got, _ = s.scan(wanted, now.Add(fullRescan))
	if len(got[uid]) != 2 {
		t.Fatalf("full rescan missed the moved pid: %v", inos(got[uid]))
	}

	if _, err := newProcScanner(filepath.Join(fp.root, "missing")).scan(wanted, now); err == nil {
		t.Error("missing proc root accepted")
	}
}

// BenchmarkProcScan measures a steady-state scan of the real /proc.
func BenchmarkProcScan(b *testing.B) {
	s := newProcScanner("/proc")
	wanted := map[string]bool{uid: true}
	now := time.Now()
	s.scan(wanted, now)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(250 * time.Millisecond)
		s.last = now // no full rescans
		s.scan(wanted, now)
	}
}
