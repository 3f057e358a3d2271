package tlshello

import "github.com/kubectl-shark/kubectl-shark/pkg/dissect"

// half reads the records of one direction. It keeps a record header while
// it is split across Data calls, and the handshake messages until they are
// whole (bounded by maxHandshake); other records are skipped as they pass.
type half struct {
	hdr       [recordHeaderLen]byte
	nhdr      int    // bytes of hdr filled
	remaining int    // bytes of the current record's body still to come
	typ       byte   // the current record's content type
	hs        []byte // the hello message being collected, header first
	skip      int    // bytes of a message of no interest still to skip
	nalert    int    // bytes of the current alert seen
	encrypted bool   // a ChangeCipherSpec was sent: later records are opaque
	lost      bool   // framing lost or handshake undecodable: stop parsing
	broken    string // why, when the handshake could not be parsed
	wire      int64  // bytes seen, until the entry was emitted
}

// feed parses data as records until it is used up or the parser is done.
func (h *half) feed(p *parser, dir dissect.Dir, data []byte) {
	for len(data) > 0 && !h.lost && !p.done {
		if h.remaining == 0 {
			data = h.header(p, dir, data)
			continue
		}
		n := min(h.remaining, len(data))
		h.body(p, dir, data[:n])
		h.remaining -= n
		data = data[n:]
	}
}

// header fills the record header and validates it.
func (h *half) header(p *parser, dir dissect.Dir, data []byte) []byte {
	n := copy(h.hdr[h.nhdr:], data)
	h.nhdr += n
	data = data[n:]
	if h.nhdr < recordHeaderLen {
		return data
	}
	h.nhdr = 0
	typ, length := h.hdr[0], int(h.hdr[3])<<8|int(h.hdr[4])
	if typ < recordChangeCipherSpec || typ > recordHeartbeat || !plausibleHeader(h.hdr[:]) {
		p.undecodable(dir, "not a TLS record")
		return nil
	}
	h.typ, h.remaining, h.nalert = typ, length, 0
	return data
}

// body handles a piece of the current record's body.
func (h *half) body(p *parser, dir dissect.Dir, b []byte) {
	switch {
	case h.encrypted:
	case h.typ == recordHandshake:
		h.handshake(p, dir, b)
	case h.typ == recordChangeCipherSpec:
		// TLS 1.3 peers send one for middlebox compatibility, even
		// around a HelloRetryRequest: only a TLS 1.2 one means what
		// follows is encrypted.
		if p.serverHello && p.legacy {
			h.encrypted = true
			p.changeCipherSpec(dir)
		}
	case h.typ == recordAlert:
		// An alert is two bytes, level then description.
		for _, c := range b {
			if h.nalert++; h.nalert == 2 {
				h.nalert = 0
				p.alert(c)
				return
			}
		}
	}
}

// handshake collects the bytes of hello messages and hands each whole one
// on; other messages (certificates, key exchange) are skipped unbuffered.
func (h *half) handshake(p *parser, dir dissect.Dir, b []byte) {
	for len(b) > 0 && !h.lost && !p.done {
		if h.skip > 0 {
			n := min(h.skip, len(b))
			h.skip -= n
			b = b[n:]
			continue
		}
		if len(h.hs) < 4 {
			n := min(4-len(h.hs), len(b))
			h.hs = append(h.hs, b[:n]...)
			b = b[n:]
			if len(h.hs) < 4 {
				return
			}
		}
		n := int(h.hs[1])<<16 | int(h.hs[2])<<8 | int(h.hs[3])
		if h.hs[0] != msgClientHello && h.hs[0] != msgServerHello {
			h.skip, h.hs = n, h.hs[:0]
			continue
		}
		if n > maxHandshake {
			p.undecodable(dir, errTooLarge)
			return
		}
		take := min(4+n-len(h.hs), len(b))
		h.hs = append(h.hs, b[:take]...)
		b = b[take:]
		if len(h.hs) == 4+n {
			p.handshake(dir, h.hs[0], h.hs[4:])
			h.hs = h.hs[:0]
		}
	}
}
