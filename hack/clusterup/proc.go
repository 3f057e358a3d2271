package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonPath is the PATH the cluster's processes get: containerd finds runc and its
// shim there, the kubelet mount and the iptables tools.
const daemonPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// start runs d detached in its own session, its output appended to its log, and
// records its pid and start time so that stop signals this process and no other.
func start(l layout, d daemon) error {
	argv := d.args
	if d.netns != "" {
		argv = append([]string{"/usr/bin/nsenter", "--net=" + d.netns, "--"}, argv...)
	}
	if err := os.MkdirAll(l.logs, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(l.logs, d.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n==== %s starting: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + daemonPath, "HOME=/root", "TMPDIR=/tmp"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	pid := cmd.Process.Pid
	st, err := procStartTime(pid)
	if err != nil {
		return err
	}
	if err := writeFile(l.pidFile(d.name), []byte(fmt.Sprintf("%d %d\n", pid, st)), 0o644); err != nil {
		return err
	}
	// Reap the process should it exit while we still run; afterwards init does.
	go func() { _ = cmd.Wait() }()
	return nil
}

// proc is a process recorded in a pid file.
type proc struct {
	name  string
	pid   int
	start uint64
}

func readPidFile(l layout, name string) (proc, error) {
	b, err := os.ReadFile(l.pidFile(name))
	if err != nil {
		return proc{}, err
	}
	var p proc
	p.name = name
	if _, err := fmt.Sscanf(string(b), "%d %d", &p.pid, &p.start); err != nil {
		return proc{}, fmt.Errorf("%s: %w", l.pidFile(name), err)
	}
	return p, nil
}

// alive tells whether the recorded process still runs: same pid, same start time,
// and not a zombie.
func (p proc) alive() bool {
	st, err := procStartTime(p.pid)
	if err != nil || st != p.start {
		return false
	}
	state, err := procState(p.pid)
	return err == nil && state != 'Z' && state != 'X'
}

// statFields returns the fields of /proc/PID/stat after the command name, which
// may itself hold spaces and parentheses.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// procStartTime is field 22 of /proc/PID/stat: the start time in clock ticks.
func procStartTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func procState(pid int) (byte, error) {
	f, err := statFields(pid)
	if err != nil || len(f) == 0 {
		return 0, errors.Join(err, fmt.Errorf("/proc/%d/stat: no state", pid))
	}
	return f[0][0], nil
}

// stopDaemon sends SIGTERM to the recorded process, then SIGKILL after grace, and
// waits for it to go. A missing pid file or a dead process is not an error.
func stopDaemon(ctx context.Context, l layout, name string, grace time.Duration) error {
	p, err := readPidFile(l, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := stopProc(ctx, p, grace); err != nil {
		return err
	}
	return os.Remove(l.pidFile(name))
}

func stopProc(ctx context.Context, p proc, grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	if waitGone(ctx, p, grace) {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	if waitGone(ctx, p, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.pid)
}

func waitGone(ctx context.Context, p proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return true
		}
		select {
		case <-ctx.Done():
			return !p.alive()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return !p.alive()
}

// killPids sends SIGKILL to every pid and waits until all are gone. It is for the
// processes of pods and shims that the cluster's runtimes started. It returns the
// processes it signalled, for waitReaped.
func killPids(ctx context.Context, pids []int) ([]proc, error) {
	var procs []proc
	for _, pid := range pids {
		st, err := procStartTime(pid)
		if err != nil {
			continue // already gone
		}
		p := proc{name: "pid " + strconv.Itoa(pid), pid: pid, start: st}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		procs = append(procs, p)
	}
	var errs []error
	for _, p := range procs {
		if !waitGone(ctx, p, 5*time.Second) {
			errs = append(errs, fmt.Errorf("%s survived SIGKILL", p.name))
		}
	}
	return procs, errors.Join(errs...)
}

// exists tells whether the process is still in the process table, zombie or not.
func (p proc) exists() bool {
	st, err := procStartTime(p.pid)
	return err == nil && st == p.start
}

// waitReaped waits a while for the zombies of the given processes to be reaped.
// The cluster's daemons outlive up, so init is their parent and reaps them a
// moment after they exit; down waits for that, so that it leaves no trace in ps.
func waitReaped(ctx context.Context, procs []proc, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, p := range procs {
		for p.exists() && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// findShims returns the pids of containerd shims serving the containerd at sock.
// Shims outlive their containerd by design, so down looks for them by address.
func findShims(sock string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if isShimOf(args, sock) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isShimOf tells whether argv is a containerd shim whose -address is sock.
func isShimOf(argv []string, sock string) bool {
	if len(argv) == 0 || !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") {
		return false
	}
	for i, a := range argv {
		if a == "-address" && i+1 < len(argv) && argv[i+1] == sock {
			return true
		}
		if a == "-address="+sock {
			return true
		}
	}
	return false
}

// runCmd runs a short command and returns its combined output in the error.
func runCmd(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// output runs a short command and returns its standard output.
func output(ctx context.Context, name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

// inNetns prefixes a command with nsenter when netns is set.
func inNetns(netns string, argv ...string) []string {
	if netns == "" {
		return argv
	}
	return append([]string{"nsenter", "--net=" + netns, "--"}, argv...)
}
