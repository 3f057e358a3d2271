package worker

import "bytes"

// Pod UIDs in cgroup paths. The kubelet names a pod's cgroup after its UID:
//
//	cgroupfs driver: /kubepods/besteffort/pod<uid>/<container>
//	                 /kubepods/pod<uid>/<container> (guaranteed QoS)
//	systemd driver:  /kubepods.slice/kubepods-burstable.slice/
//	                   kubepods-burstable-pod<uid_with_underscores>.slice/
//	                   cri-containerd-<id>.scope (crio-<id>.scope, docker-<id>.scope)
//
// on cgroup v1 (one line per hierarchy) and v2 ("0::/..."), possibly below
// a prefix (kind's /kubelet.slice/kubelet-kubepods.slice/...). Static pods
// have 32-hex-digit UIDs without dashes.

// podUIDFromCgroup returns the UID of the pod whose cgroup a process is in,
// given its /proc/PID/cgroup, with dashes, lower case; or "".
func podUIDFromCgroup(b []byte) string {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		// hierarchy-ID:controllers:path; the path may hold colons.
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		if uid := podUIDFromPath(line[i+1+j+1:]); uid != "" {
			return uid
		}
	}
	return ""
}

// podUIDFromPath finds the innermost pod element of one cgroup path.
func podUIDFromPath(path []byte) string {
	uid := ""
	for len(path) > 0 {
		elem := path
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			elem, path = path[:i], path[i+1:]
		} else {
			path = nil
		}
		if u := podUIDFromElem(elem); u != "" {
			uid = u
		}
	}
	return uid
}

func podUIDFromElem(e []byte) string {
	var raw []byte
	if s, ok := bytes.CutSuffix(e, []byte(".slice")); ok {
		// kubepods-<qos>-pod<uid>.slice
		i := bytes.LastIndex(s, []byte("-pod"))
		if i < 0 || !bytes.HasPrefix(s, []byte("kubepods")) && !bytes.Contains(s, []byte("-kubepods")) {
			return ""
		}
		raw = s[i+4:]
	} else if rest, ok := bytes.CutPrefix(e, []byte("pod")); ok {
		raw = rest
	} else {
		return ""
	}
	if len(raw) < 32 || len(raw) > 36 {
		return ""
	}
	uid := normalizeUID(string(raw))
	if !validUID(uid) {
		return ""
	}
	return uid
}

// normalizeUID lower-cases a UID and turns the underscores systemd slice
// names use back into dashes.
func normalizeUID(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '_':
			b[i] = '-'
		case 'A' <= c && c <= 'F':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// validUID accepts a UUID in its 8-4-4-4-12 form, or 32 hex digits (the
// UIDs of static pods).
func validUID(s string) bool {
	switch len(s) {
	case 36:
		for i := 0; i < len(s); i++ {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return false
				}
			} else if !isHex(s[i]) {
				return false
			}
		}
		return true
	case 32:
		for i := 0; i < len(s); i++ {
			if !isHex(s[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
