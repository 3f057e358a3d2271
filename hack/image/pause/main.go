// Command pause is the pod sandbox ("infra") container of the local dev cluster:
// it holds the pod's namespaces open, reaps orphaned children as PID 1 must, and
// exits cleanly on SIGINT or SIGTERM. It is built static and put in an image by
// hack/image --pause, since no registry is reachable to pull upstream's.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "3.10"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause", version, "(kubectl-shark hack/image)")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every exited child so that none lingers as a zombie. One SIGCHLD
// may stand for many exits, hence the loop.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
