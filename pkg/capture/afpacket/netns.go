//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrNotNetns reports a path that is not (yet) a network namespace: `ip
// netns add` creates the file a moment before it mounts the namespace on
// it.
var ErrNotNetns = errors.New("not a network namespace")

// nsfsDev is the device of the namespace file system: every namespace
// file has it.
var nsfsDev = sync.OnceValues(func() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return 0, err
	}
	return st.Dev, nil
})

func checkNsfs(path string, st *unix.Stat_t) error {
	dev, err := nsfsDev()
	if err != nil {
		return fmt.Errorf("finding the namespace file system: %w", err)
	}
	if st.Dev != dev {
		return fmt.Errorf("%s: %w", path, ErrNotNetns)
	}
	return nil
}

// Netns is an open network namespace: a file descriptor on one of its
// nsfs files (/proc/PID/ns/net, /run/netns/NAME). Holding it keeps the
// namespace alive, so close it as soon as the sockets are open.
type Netns struct {
	fd  int
	Dev uint64
	// Ino is the namespace's inode number: the same for every process and
	// bind mount of one namespace, and the key of one capture per netns.
	Ino uint64
}

// OpenNetns opens the network namespace at path. An empty path opens the
// namespace of the calling process.
func OpenNetns(path string) (*Netns, error) {
	if path == "" {
		path = "/proc/self/ns/net"
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	if err := checkNsfs(path, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Netns{fd: fd, Dev: st.Dev, Ino: st.Ino}, nil
}

// NetnsInode returns the inode of the network namespace at path without
// keeping it open. It fails with ErrNotNetns for a file of another kind.
func NetnsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	if err := checkNsfs(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Close releases the namespace.
func (n *Netns) Close() error {
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	return err
}

// errRestore marks a thread that could not return to its own namespace.
var errRestore = errors.New("cannot return to the original network namespace")

// Do runs fn on an OS thread switched into the namespace. Sockets fn
// creates belong to the namespace for their whole life, wherever they are
// used afterwards. fn must not start goroutines that expect to run in the
// namespace: only the calling thread is switched.
//
// Do runs on a goroutine of its own that locks its thread. If the thread
// cannot be switched back, the goroutine exits still locked, and the Go
// runtime terminates the thread rather than reuse it in the wrong namespace.
func (n *Netns) Do(fn func() error) error {
	if n.fd < 0 {
		return fmt.Errorf("network namespace: %w", unix.EBADF)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ferr, restored := n.switchAndRun(fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// switchAndRun must run on a locked thread. restored reports whether the
// thread is back in its original namespace (or never left it).
func (n *Netns) switchAndRun(fn func() error) (err error, restored bool) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the thread's network namespace: %w", err), true
	}
	defer unix.Close(orig)
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering network namespace %d: %w", n.Ino, err), true
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("%w: %w", errRestore, err), false
	}
	return ferr, true
}
