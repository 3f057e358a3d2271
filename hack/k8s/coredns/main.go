// Command coredns is CoreDNS, built from its Go module with only the plugins the
// local dev cluster uses: cluster DNS from the Kubernetes API and nothing that
// forwards off the machine. Names outside the cluster get NXDOMAIN.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugin chain of the cluster's Corefile (hack/clusterup renders it).
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() { coremain.Run() }
