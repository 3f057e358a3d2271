package tracer

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// fileKey identifies a mapped file across processes and mount namespaces:
// uprobes attach to the inode, so one attachment serves every process
// that maps it.
type fileKey struct {
	dev string // major:minor as /proc/PID/maps shows it
	ino uint64
}

// probedFile is one inspected file and its probes.
type probedFile struct {
	path   string
	probes *Probes
	links  []link.Link
}

func (b *probedFile) close() {
	for _, l := range b.links {
		l.Close()
	}
	b.links = nil
}

// Scan looks at the processes of the traced namespaces and attaches probes
// to every TLS library and Go binary they map that was not seen before. A
// file is inspected once. It returns the files newly probed.
func (t *Tracer) Scan() ([]string, error) {
	ents, err := os.ReadDir(t.opts.ProcRoot)
	if err != nil {
		return nil, err
	}
	var attached []string
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if ino, ok := t.pidNetns(pid); !ok || !t.wantsNetns(ino) {
			continue
		}
		for _, m := range t.mappedFiles(pid) {
			if path, ok := t.consider(pid, m); ok {
				attached = append(attached, path)
			}
		}
	}
	return attached, nil
}

func (t *Tracer) pidNetns(pid int) (uint32, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(t.opts.ProcRoot, strconv.Itoa(pid), "ns", "net"), &st); err != nil {
		return 0, false
	}
	return uint32(st.Ino), true
}

// mapping is one executable file mapping of a process.
type mapping struct {
	key     fileKey
	path    string // as the process sees it
	rng     string // start-end, for /proc/PID/map_files
	deleted bool
}

// mappedFiles lists the files a process maps executable.
func (t *Tracer) mappedFiles(pid int) []mapping {
	data, err := os.ReadFile(filepath.Join(t.opts.ProcRoot, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil
	}
	return parseMaps(data)
}

// parseMaps reads /proc/PID/maps lines: "start-end perms offset dev inode path".
func parseMaps(data []byte) []mapping {
	var out []mapping
	seen := map[fileKey]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || len(f[1]) < 3 || f[1][2] != 'x' || !strings.HasPrefix(f[5], "/") {
			continue
		}
		ino, err := strconv.ParseUint(f[4], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		k := fileKey{dev: f[3], ino: ino}
		if seen[k] {
			continue
		}
		seen[k] = true
		path := strings.Join(f[5:], " ")
		m := mapping{key: k, rng: f[0]}
		m.path, m.deleted = strings.CutSuffix(path, " (deleted)")
		out = append(out, m)
	}
	return out
}

// consider inspects a file the first time it is seen and attaches its
// probes; it reports the path when probes were attached.
func (t *Tracer) consider(pid int, m mapping) (string, bool) {
	t.mu.Lock()
	_, seen := t.files[m.key]
	closed := t.closed
	if !seen {
		t.files[m.key] = &probedFile{} // claimed: inspected once, even if it fails
	}
	t.mu.Unlock()
	if seen || closed {
		return "", false
	}
	// Through the process's root, so a container's file is found on the
	// host; a deleted file is still reachable through map_files.
	path := filepath.Join(t.opts.ProcRoot, strconv.Itoa(pid), "root", m.path)
	if m.deleted {
		path = filepath.Join(t.opts.ProcRoot, strconv.Itoa(pid), "map_files", m.rng)
	}
	b, err := t.inspect(path)
	if err != nil {
		return "", false
	}
	if b.probes.Empty() {
		if b.probes.GoSkipped != "" {
			t.opts.Logf("TLS tracing skips %s (pid %d): %s", m.path, pid, b.probes.GoSkipped)
		}
		return "", false
	}
	if err := t.attach(b); err != nil {
		b.close()
		t.opts.Logf("TLS probes on %s (pid %d) failed: %v", m.path, pid, err)
		return "", false
	}
	t.mu.Lock()
	if t.closed {
		b.close()
	} else {
		t.files[m.key] = b
	}
	t.mu.Unlock()
	t.opts.Logf("TLS probes on %s (pid %d): %s", m.path, pid, b.describe())
	return m.path, true
}

func (t *Tracer) inspect(path string) (*probedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := Inspect(f)
	if err != nil {
		return nil, err
	}
	return &probedFile{path: path, probes: p}, nil
}

func (b *probedFile) describe() string {
	var parts []string
	if len(b.probes.SSL) > 0 {
		parts = append(parts, fmt.Sprintf("%d OpenSSL calls", len(b.probes.SSL)))
	}
	if g := b.probes.Go; g != nil {
		parts = append(parts, fmt.Sprintf("Go %s crypto/tls (%d returns)", g.Version, len(g.Write.Returns)+len(g.Read.Returns)))
	}
	return strings.Join(parts, ", ")
}

// attach places the probes of one file.
func (t *Tracer) attach(b *probedFile) error {
	ex, err := link.OpenExecutable(b.path)
	if err != nil {
		return err
	}
	entries := map[string]*ebpf.Program{
		"SSL_write":    t.objs.SslWriteEnter,
		"SSL_read":     t.objs.SslReadEnter,
		"SSL_write_ex": t.objs.SslWriteExEnter,
		"SSL_read_ex":  t.objs.SslReadExEnter,
	}
	for sym, off := range b.probes.SSL {
		if err := b.probe(ex, sym, off, entries[sym], false); err != nil {
			return err
		}
		if err := b.probe(ex, sym, off, t.objs.SslReturn, true); err != nil {
			return err
		}
	}
	if g := b.probes.Go; g != nil {
		for _, fn := range []struct {
			name  string
			f     GoFunc
			entry *ebpf.Program
		}{{goWriteSymbol, g.Write, t.objs.GoTlsWriteEnter}, {goReadSymbol, g.Read, t.objs.GoTlsReadEnter}} {
			if err := b.probe(ex, fn.name, fn.f.Entry, fn.entry, false); err != nil {
				return err
			}
			// Return probes go on every RET instruction: uretprobes rewrite
			// the return address on a stack the Go runtime may move.
			for _, off := range fn.f.Returns {
				if err := b.probe(ex, fn.name, off, t.objs.GoTlsReturn, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *probedFile) probe(ex *link.Executable, sym string, off uint64, prog *ebpf.Program, ret bool) error {
	opts := &link.UprobeOptions{Address: off}
	var l link.Link
	var err error
	if ret {
		l, err = ex.Uretprobe(sym, prog, opts)
	} else {
		l, err = ex.Uprobe(sym, prog, opts)
	}
	if err != nil {
		return fmt.Errorf("%s at %#x: %w", sym, off, err)
	}
	b.links = append(b.links, l)
	return nil
}
