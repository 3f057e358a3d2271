package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ourChain tells whether a chain belongs to the cluster: kube-proxy's and the
// kubelet's KUBE-* chains and the CNI plugins' CNI-* chains.
func ourChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// cleanupScript turns the iptables-save output of one table into an
// iptables-restore --noflush script that deletes the cluster's chains and every
// rule elsewhere that jumps to them, and touches nothing else. It returns "" when
// the table holds nothing of ours.
func cleanupScript(save string) string {
	var table string
	var chains, deletes []string
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = strings.TrimPrefix(line, "*")
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, ":"), " ")
			if ourChain(name) {
				chains = append(chains, name)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if len(f) > 1 && !ourChain(f[1]) && ourChain(ruleTarget(f)) {
				deletes = append(deletes, "-D"+strings.TrimPrefix(line, "-A"))
			}
		}
	}
	if table == "" || (len(chains) == 0 && len(deletes) == 0) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", table)
	for _, d := range deletes {
		b.WriteString(d + "\n")
	}
	// Flush every chain before deleting any: they jump to each other.
	for _, c := range chains {
		fmt.Fprintf(&b, "-F %s\n", c)
	}
	for _, c := range chains {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// ruleTarget is the chain a rule jumps or goes to ("-j X" or "-g X").
func ruleTarget(fields []string) string {
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "-j" || fields[i] == "-g" || fields[i] == "--jump" || fields[i] == "--goto" {
			return fields[i+1]
		}
	}
	return ""
}

var iptablesTables = []string{"filter", "nat", "mangle", "raw"}

// cleanupIptables removes the cluster's chains from the host's IPv4 and IPv6
// tables. The node namespaces took their own rules with them.
func cleanupIptables(ctx context.Context) error {
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		for _, table := range iptablesTables {
			save, err := output(ctx, tool+"-save", "-t", table)
			if err != nil {
				continue // table not present in this kernel
			}
			script := cleanupScript(save)
			if script == "" {
				continue
			}
			cmd := exec.CommandContext(ctx, tool+"-restore", "--noflush")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s-restore (%s): %w: %s", tool, table, err, out))
			}
		}
	}
	return errors.Join(errs...)
}

// ourChains lists the cluster's chains still in the host's tables, as
// "iptables/nat/KUBE-SERVICES"; status and the e2e test report them.
func ourChains(ctx context.Context) []string {
	var out []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range iptablesTables {
			save, err := output(ctx, tool+"-save", "-t", table)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(save, "\n") {
				if name, _, _ := strings.Cut(strings.TrimPrefix(line, ":"), " "); strings.HasPrefix(line, ":") && ourChain(name) {
					out = append(out, tool+"/"+table+"/"+name)
				}
			}
		}
	}
	return out
}
