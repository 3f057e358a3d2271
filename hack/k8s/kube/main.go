// Command kube is one multi-call binary for the Kubernetes components of the local
// dev cluster: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
// kube-proxy and kubectl, plus cri-reset, which empties a CRI runtime on teardown. One binary links the shared dependencies once, which halves
// the cold build on two cores. It picks the component from the name it is run as
// (a symlink) or from its first argument: `kube kubelet --config ...`.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // CronJob time zones, as upstream's apiserver and controller-manager

	"github.com/spf13/cobra"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's auth plugins
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// components maps a component name to its upstream cobra command constructor.
var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kubelet":                 kubelet.NewKubeletCommand,
	"kube-proxy":              proxy.NewProxyCommand,
}

func main() {
	name := filepath.Base(os.Args[0])
	if !isComponent(name) && len(os.Args) > 1 {
		// Run as `kube COMPONENT args...`: drop our own name so that cobra parses
		// the component's arguments exactly as upstream's main would.
		os.Args = os.Args[1:]
		name = os.Args[0]
	}
	if name == "cri-reset" {
		os.Exit(criReset(os.Args[1:]))
	}
	if name == "kubectl" {
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
		return
	}
	newCmd, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: kube COMPONENT [flags]\ncomponents: %v\n", names())
		os.Exit(2)
	}
	os.Exit(cli.Run(newCmd()))
}

func isComponent(name string) bool {
	return name == "kubectl" || name == "cri-reset" || components[name] != nil
}

func names() []string {
	out := []string{"kubectl", "cri-reset"}
	for n := range components {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
