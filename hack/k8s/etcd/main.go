// Command etcd is upstream's etcd server at the version Kubernetes pins, built from
// the same module graph as the Kubernetes binaries so that both agree on it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
