package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// apiServerURL is where every client reaches the API server: node 1's address,
// which exists only on the bridge `up` creates.
func apiServerURL() string { return fmt.Sprintf("https://%s:6443", nthAddr(nodeNet, 1)) }

// renderKubeconfig is a kubeconfig with one cluster, one user and one context, the
// certificates embedded so that the file can be copied anywhere on this machine.
func renderKubeconfig(server, user string, ca, cert, key []byte) string {
	b64 := base64.StdEncoding.EncodeToString
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[4]s
  user:
    client-certificate-data: %[5]s
    client-key-data: %[6]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[4]s
current-context: %[1]s
`, clusterName, server, b64(ca), user, b64(cert), b64(key))
	return b.String()
}

// kubeconfigs are the client identities that get a kubeconfig, by file name.
func kubeconfigs(ns []node) map[string]string {
	m := map[string]string{
		"admin":              "kubernetes-admin",
		"controller-manager": "system:kube-controller-manager",
		"scheduler":          "system:kube-scheduler",
		"kube-proxy":         "system:kube-proxy",
	}
	for _, n := range ns {
		m[n.name+"-client"] = "system:node:" + n.name
	}
	return m
}

// writeKubeconfigs writes state/config/NAME.kubeconfig for every identity and
// copies the admin one to the well-known path users read.
func writeKubeconfigs(l layout, ns []node) error {
	ca, err := os.ReadFile(l.pki("ca.crt"))
	if err != nil {
		return err
	}
	for file, user := range kubeconfigs(ns) {
		cert, err := os.ReadFile(l.pki(file + ".crt"))
		if err != nil {
			return err
		}
		key, err := os.ReadFile(l.pki(file + ".key"))
		if err != nil {
			return err
		}
		kc := renderKubeconfig(apiServerURL(), user, ca, cert, key)
		if err := writeFile(l.config(file+".kubeconfig"), []byte(kc), 0o600); err != nil {
			return err
		}
		if file == "admin" {
			if err := writeFile(l.kubeconfig, []byte(kc), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}
