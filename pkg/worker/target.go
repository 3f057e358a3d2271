package worker

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Target is one thing to capture: a pod, found by its UID through /proc,
// or a network namespace given by path (sniff, tests).
type Target struct {
	// UID is the pod's UID; the worker finds its network namespace from
	// the cgroups of its processes.
	UID string
	// Namespace and Name name the pod; entries and pcap interfaces show
	// them as namespace/name.
	Namespace string
	Name      string
	// Netns is a network namespace file (/run/netns/x, /proc/PID/ns/net)
	// to capture instead of resolving UID.
	Netns string
	// Interface captures only this interface of the namespace; empty
	// captures all of them.
	Interface string
	// IPs are addresses known to be the pod's, besides those the worker
	// reads from its namespace.
	IPs []netip.Addr
	// Label names the capture interface of a target that is not a pod
	// (sniff: "eth0", "pid:42"); pods are named namespace/name.
	Label string
}

// key identifies a target within a target set.
func (t Target) key() string {
	if t.UID != "" {
		return "uid:" + t.UID
	}
	return "netns:" + t.Netns + "\x00" + t.Interface
}

// DisplayName is the name of the target's capture interface: namespace/pod
// for a pod.
func (t Target) DisplayName() string {
	switch {
	case t.Label != "":
		return t.Label
	case t.Namespace != "" && t.Name != "":
		return t.Namespace + "/" + t.Name
	case t.Name != "":
		return t.Name
	case t.UID != "":
		return t.UID
	}
	name := t.Netns
	if i := strings.LastIndexByte(name, '/'); i >= 0 && !strings.HasPrefix(name, "/proc/") {
		name = name[i+1:]
	}
	if t.Interface != "" {
		name += ":" + t.Interface
	}
	return name
}

// Validate checks a target.
func (t Target) Validate() error {
	switch {
	case t.UID == "" && t.Netns == "":
		return fmt.Errorf("target %q has neither a pod UID nor a netns path", t.DisplayName())
	case t.UID != "" && t.Netns != "":
		return fmt.Errorf("target %q has both a pod UID and a netns path", t.DisplayName())
	case t.UID != "" && !validUID(normalizeUID(t.UID)):
		return fmt.Errorf("pod UID %q is not a UID (32 hex digits, with or without dashes)", t.UID)
	}
	return nil
}

// ParseTarget parses "UID=namespace/name" (or a bare UID).
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	uid, name, hasName := strings.Cut(s, "=")
	t := Target{UID: normalizeUID(strings.TrimSpace(uid))}
	if hasName {
		ns, pod, ok := strings.Cut(strings.TrimSpace(name), "/")
		if !ok || ns == "" || pod == "" || strings.Contains(pod, "/") {
			return Target{}, fmt.Errorf("target %q: want UID=namespace/name", s)
		}
		t.Namespace, t.Name = ns, pod
	}
	if err := t.Validate(); err != nil {
		return Target{}, err
	}
	return t, nil
}

// ParseTargets reads one target per line ("UID=namespace/name"); blank
// lines and lines starting with # are skipped.
func ParseTargets(r io.Reader) ([]Target, error) {
	var out []Target
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		t, err := ParseTarget(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}
