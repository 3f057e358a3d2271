package mysql

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/tlshello"
)

// Values of the handshake entry.
const (
	handshakeCommand = "Handshake"
	handshakeMethod  = "HANDSHAKE"
	statusTLS        = "TLS"
)

// greeting starts the connection phase with the server's greeting
// (Protocol::HandshakeV10), or its refusal.
func (p *parser) greeting(h *half, ts time.Time) {
	x := p.newExchange(h.start)
	x.my.Command, x.e.Method = handshakeCommand, handshakeMethod
	x.e.Size.Response += h.wire
	p.hs, p.phase = x, phaseLogin
	b := h.buf
	if b[0] == 0xFF {
		p.errPacket(x, b)
		x.responded = true
		p.finish(x, "")
		p.hs = nil
		return
	}
	version, rest := cstring(b[1:])
	x.my.ServerVersion = version
	// connection id (4), auth data (8), filler (1), capabilities (2),
	// charset (1), status (2), capabilities (2).
	if len(rest) >= 20 {
		p.serverCaps = uint32(le16(rest[13:])) | uint32(le16(rest[13+5:]))<<16
	}
}

// login reads the client's HandshakeResponse41 (or SSLRequest).
func (p *parser) login(h *half, ts time.Time) {
	x := p.hs
	if x == nil { // the greeting was not captured
		x = p.newExchange(h.start)
		x.my.Command, x.e.Method = handshakeCommand, handshakeMethod
		p.hs = x
	}
	x.e.Size.Request += h.wire
	x.last = ts
	b := h.buf
	if len(b) < 32 {
		p.phase = phaseAuth
		return
	}
	caps := le32(b)
	p.clientCaps = caps
	p.deprecate = no
	if caps&capDeprecateEOF != 0 {
		p.deprecate = yes
	}
	if h.total == 32 && caps&capSSL != 0 {
		// SSLRequest: TLS starts right after it.
		x.e.Status, x.e.TLS = statusTLS, true
		p.finish(x, "")
		p.hs = nil
		p.phase = phaseCommand
		p.tls = tlshello.Protocol().NewStream(p.conn, p.emit)
		return
	}
	p.phase = phaseAuth
	user, rest := cstring(b[32:])
	x.my.User, x.e.Path = user, user
	rest = skipAuthResponse(rest, caps)
	if caps&capConnectWithDB != 0 && len(rest) > 0 {
		x.my.Database, _ = cstring(rest)
		p.database = x.my.Database
	}
}

// skipAuthResponse skips the auth-response field of a login packet.
func skipAuthResponse(b []byte, caps uint32) []byte {
	switch {
	case caps&capPluginAuthLenenc != 0:
		n, k := lenenc(b)
		if k == 0 || uint64(len(b)-k) < n {
			return nil
		}
		return b[k+int(n):]
	case caps&capSecureConnection != 0:
		if len(b) == 0 || len(b) < 1+int(b[0]) {
			return nil
		}
		return b[1+int(b[0]):]
	}
	_, rest := cstring(b)
	return rest
}

// auth handles a server packet of the authentication exchanges: an auth
// switch (0xFE) or more data (0x01) continues them, OK or ERR ends them.
func (p *parser) auth(h *half, ts time.Time) {
	x := p.hs
	if x == nil {
		p.phase = phaseCommand
		return
	}
	x.e.Size.Response += h.wire
	x.responded, x.last = true, ts
	switch h.buf[0] {
	case 0x00:
		p.phase = phaseCommand
		if p.clientCaps&capCompress != 0 && p.serverCaps&capCompress != 0 {
			p.phase = phaseOff
			x.e.Error = errCompressed
		}
	case 0xFF:
		p.errPacket(x, h.buf)
		p.phase = phaseCommand
	default:
		return
	}
	p.finish(x, "")
	p.hs = nil
}
