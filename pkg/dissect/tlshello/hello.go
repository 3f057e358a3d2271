package tlshello

import "bytes"

// Extension types (IANA TLS ExtensionType Values).
const (
	extServerName        = 0
	extALPN              = 16
	extPreSharedKey      = 41
	extSupportedVersions = 43
)

// Bounds on what an entry keeps of a hello.
const (
	maxName   = 255 // a host name (RFC 1035)
	maxALPN   = 16  // protocols listed
	maxProto  = 64  // bytes of one protocol name
	sessionID = 32  // the longest legacy session id
)

// helloRetry is the random of a HelloRetryRequest (RFC 8446 section 4.1.3).
var helloRetry = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// reader reads big-endian fields with bounds checks; a read past the end
// sets bad and returns zeros, so a parse checks once at its end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(b[0])<<8 | int(b[1])
}

// vec reads a vector with a length prefix of n bytes (1 or 2).
func (r *reader) vec(n int) reader {
	var l int
	if n == 1 {
		l = r.u8()
	} else {
		l = r.u16()
	}
	return reader{b: r.bytes(l), bad: r.bad}
}

// extensions calls f for each extension of a hello's extension block. A
// hello may end before the block (SSL 3.0 style).
func (r *reader) extensions(f func(typ int, data reader)) {
	if len(r.b) == 0 || r.bad {
		return
	}
	exts := r.vec(2)
	for len(exts.b) > 0 && !exts.bad {
		typ := exts.u16()
		data := exts.vec(2)
		if exts.bad {
			break
		}
		f(typ, data)
	}
	r.bad = r.bad || exts.bad
}

// parseClientHello takes the server name, the offered ALPN protocols and
// the session id. A second ClientHello (after a HelloRetryRequest) only
// fills what the first did not.
func (p *parser) parseClientHello(body []byte) {
	r := reader{b: body}
	r.bytes(2 + 32) // legacy_version, random
	sid := r.vec(1)
	r.vec(2) // cipher_suites
	r.vec(1) // compression_methods
	if !p.clientHello && len(sid.b) <= sessionID {
		p.sessionID = append(p.sessionID[:0], sid.b...)
	}
	r.extensions(func(typ int, d reader) {
		switch typ {
		case extServerName:
			if p.info.SNI == "" {
				p.info.SNI = serverName(d)
			}
		case extALPN:
			if p.info.ALPN == nil {
				p.info.ALPN = protocols(d)
			}
		}
	})
	if r.bad || sid.bad {
		p.undecodable(0, errMalformed)
		return
	}
	p.clientHello = true
}

// parseServerHello takes the version, cipher suite, selected ALPN protocol
// and whether the session was resumed. A HelloRetryRequest only notes the
// version and cipher: the real ServerHello follows.
func (p *parser) parseServerHello(body []byte) {
	r := reader{b: body}
	version := r.u16()
	random := r.bytes(32)
	sid := r.vec(1)
	cipher := r.u16()
	r.u8() // compression_method
	psk := false
	r.extensions(func(typ int, d reader) {
		switch typ {
		case extSupportedVersions:
			if v := d.u16(); !d.bad {
				version = v
			}
		case extALPN:
			if ps := protocols(d); len(ps) > 0 {
				p.info.ALPNSelected = ps[0]
			}
		case extPreSharedKey:
			psk = true
		}
	})
	if r.bad || sid.bad {
		p.undecodable(1, errMalformed)
		return
	}
	p.info.Version = versionName(version)
	p.info.Cipher = cipherName(cipher)
	if bytes.Equal(random, helloRetry) {
		return
	}
	p.serverHello = true
	p.legacy = version < 0x0304
	if p.legacy {
		p.info.Resumed = len(sid.b) > 0 && bytes.Equal(sid.b, p.sessionID)
	} else {
		p.info.Resumed = psk
		p.finish("") // everything after is encrypted
	}
}

// serverName returns the first host_name of a server_name extension.
func serverName(d reader) string {
	list := d.vec(2)
	for len(list.b) > 0 && !list.bad {
		typ := list.u8()
		name := list.vec(2)
		if typ == 0 && !name.bad {
			return text(name.b, maxName)
		}
	}
	return ""
}

// protocols returns the protocol names of an ALPN extension.
func protocols(d reader) []string {
	list := d.vec(2)
	var out []string
	for len(list.b) > 0 && !list.bad && len(out) < maxALPN {
		name := list.vec(1)
		if name.bad {
			break
		}
		out = append(out, text(name.b, maxProto))
	}
	return out
}

// text is b as a string, cut to n bytes.
func text(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
