package http2

import (
	"golang.org/x/net/http2/hpack"
)

// HPACK bounds.
const (
	// maxHeaderBlock bounds the bytes of one header block (HEADERS or
	// PUSH_PROMISE and its CONTINUATION frames) buffered for decoding.
	maxHeaderBlock = 1 << 20
	// maxHeaderList bounds the decoded fields kept from one block, counted
	// as RFC 9113 counts SETTINGS_MAX_HEADER_LIST_SIZE (name + value + 32).
	// Fields past it are still decoded, to keep the table in sync, but
	// dropped.
	maxHeaderList = 64 << 10
	// maxTableSize bounds the dynamic table kept per direction, whatever
	// the peers agree on.
	maxTableSize = 64 << 10
	// defaultTableSize is the table size every connection starts with.
	defaultTableSize = 4096
)

// headerDecoder decodes the header blocks of one direction with an HPACK
// decoder whose dynamic table it keeps in sync across every block.
//
// It never mis-decodes, even when the capture began mid-connection and the
// table's older entries are unknown. The invariant: the table holds, at the
// right positions, the newest entries of the sender's table, and nothing
// else. It holds when the table starts empty (at the connection start, or
// after a reset) and every insertion since is mirrored: a field inserted
// with a name we cannot know (its name is a reference to an entry we lack)
// is mirrored by a placeholder entry with an empty name. Blocks are decoded
// one field representation at a time, so a field that references a missing
// or placeholder entry is counted as unknown and skipped, and the fields
// after it still decode. A placeholder may be smaller than the entry it
// stands for, and after a mid-connection start the table is allowed its
// largest size, so the table evicts no earlier than the sender's: an
// index the sender uses is either resolved to the right entry or found
// missing.
type headerDecoder struct {
	dec *hpack.Decoder

	fields   []hpack.HeaderField // decoded fields of the last block
	listSize int                 // of fields, as RFC 9113 counts it
	unknown  int                 // fields of the last block that could not be decoded
	invalid  bool                // a field name no peer would send: the block is garbage
	overflow bool                // fields past maxHeaderList were dropped

	inserting bool   // writing a placeholder: its emit is not a field
	synth     []byte // scratch for placeholder representations
}

func newHeaderDecoder() *headerDecoder {
	h := &headerDecoder{}
	h.dec = hpack.NewDecoder(defaultTableSize, h.onField)
	h.dec.SetMaxStringLength(maxHeaderList)
	return h
}

// reset forgets the dynamic table: its content is no longer known (a gap,
// a block that could not be parsed, a mid-connection start). The table then
// may grow to the largest size we allow, as the sender's size is unknown.
func (h *headerDecoder) reset() {
	h.dec.SetMaxDynamicTableSize(0) // evicts every entry
	h.dec.SetMaxDynamicTableSize(maxTableSize)
	h.dec.SetAllowedMaxDynamicTableSize(maxTableSize)
	_ = h.dec.Close()
}

// peerTableSize applies the peer's SETTINGS_HEADER_TABLE_SIZE, which bounds
// the size updates this direction's encoder may send. It never goes below
// the default: the capture may deliver the two directions in a different
// order than the peers saw them, and a larger bound decodes the same.
func (h *headerDecoder) peerTableSize(v uint32) {
	h.dec.SetAllowedMaxDynamicTableSize(min(max(v, defaultTableSize), maxTableSize))
}

func (h *headerDecoder) onField(f hpack.HeaderField) {
	if h.inserting {
		return
	}
	if f.Name == "" {
		h.unknown++ // a placeholder: the field's name is unknown
		return
	}
	if !validName(f.Name) {
		h.invalid = true
		return
	}
	size := len(f.Name) + len(f.Value) + 32
	if h.listSize+size > maxHeaderList {
		h.overflow = true
		h.dec.SetEmitEnabled(false)
		return
	}
	h.listSize += size
	h.fields = append(h.fields, f)
}

// decode decodes one complete header block into h.fields. It reports false
// when the block is not a header block: it could not be split into field
// representations, or it held a field name no peer sends (bytes taken for
// a block after a false frame boundary). The table is then reset, since
// the block's insertions are lost or garbage.
func (h *headerDecoder) decode(block []byte) bool {
	h.fields = h.fields[:0]
	h.listSize, h.unknown, h.invalid, h.overflow = 0, 0, false, false
	h.dec.SetEmitEnabled(true)
	for len(block) > 0 {
		r, ok := scanRep(block)
		if !ok {
			h.unknown++
			h.reset()
			return false
		}
		if !h.write(block[:r.n]) {
			h.unknown++
			if r.kind == repLiteralIndexed {
				h.placeholder(block[r.valOff:r.n])
			}
		}
		block = block[r.n:]
	}
	if h.invalid {
		h.fields = h.fields[:0]
		h.unknown++
		h.reset()
		return false
	}
	return true
}

// validName reports whether a field name is one a peer may send: a known
// pseudo-header, or a token. Upper case is tolerated (and lowered later),
// as some peers send it although HTTP/2 forbids it.
func validName(name string) bool {
	if name[0] == ':' {
		switch name {
		case ":method", ":path", ":scheme", ":authority", ":status", ":protocol":
			return true
		}
		return false
	}
	for i := 0; i < len(name); i++ {
		if !tokenChar[name[i]] {
			return false
		}
	}
	return true
}

// tokenChar marks the bytes of an HTTP token (RFC 9110 section 5.6.2).
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// write feeds one whole representation to the decoder. Close after each one
// checks that the decoder consumed it entirely and keeps nothing buffered.
func (h *headerDecoder) write(rep []byte) bool {
	_, err := h.dec.Write(rep)
	if cerr := h.dec.Close(); err == nil {
		err = cerr
	}
	return err == nil
}

// placeholder mirrors the insertion of a field that could not be decoded:
// an entry with an empty name and the field's value, or an empty value if
// that does not decode either. It is never larger than the real entry.
func (h *headerDecoder) placeholder(value []byte) {
	h.inserting = true
	defer func() { h.inserting = false }()
	h.synth = append(append(h.synth[:0], 0x40, 0x00), value...)
	if !h.write(h.synth) {
		h.write([]byte{0x40, 0x00, 0x00})
	}
}

// field returns the value of the first decoded field named name.
func (h *headerDecoder) field(name string) (string, bool) {
	for _, f := range h.fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// repKind is the kind of an HPACK field representation (RFC 7541 section 6).
type repKind uint8

const (
	repIndexed        repKind = iota // 1xxxxxxx
	repLiteralIndexed                // 01xxxxxx: literal, added to the table
	repLiteralNoIndex                // 0000xxxx
	repLiteralNever                  // 0001xxxx
	repSizeUpdate                    // 001xxxxx
)

// rep locates one field representation in a block.
type rep struct {
	kind  repKind
	n     int    // length of the representation
	index uint64 // index, name index (0: literal name), or new table size
	// The literal name's string bytes, when index is 0.
	nameOff, nameEnd int
	nameHuff         bool
	valOff           int // start of the value string, length prefix included
}

// scanRep splits the representation at the start of b without decoding its
// strings. It reports false when b ends inside it or it is malformed.
func scanRep(b []byte) (rep, bool) {
	var r rep
	var prefix uint8
	switch c := b[0]; {
	case c&0x80 != 0:
		r.kind, prefix = repIndexed, 7
	case c&0xc0 == 0x40:
		r.kind, prefix = repLiteralIndexed, 6
	case c&0xe0 == 0x20:
		r.kind, prefix = repSizeUpdate, 5
	case c&0xf0 == 0x10:
		r.kind, prefix = repLiteralNever, 4
	default:
		r.kind, prefix = repLiteralNoIndex, 4
	}
	v, n := hpackInt(b, prefix)
	if n == 0 {
		return r, false
	}
	r.index, r.n = v, n
	if r.kind == repIndexed || r.kind == repSizeUpdate {
		return r, r.kind == repSizeUpdate || v != 0
	}
	if v == 0 {
		start, end, huff, ok := hpackString(b, r.n)
		if !ok {
			return r, false
		}
		r.nameOff, r.nameEnd, r.nameHuff, r.n = start, end, huff, end
	}
	r.valOff = r.n
	_, end, _, ok := hpackString(b, r.n)
	r.n = end
	return r, ok
}

// hpackString locates the string literal at b[off:]: its bytes are
// b[start:end], Huffman-coded when huff.
func hpackString(b []byte, off int) (start, end int, huff, ok bool) {
	if off >= len(b) {
		return 0, 0, false, false
	}
	l, n := hpackInt(b[off:], 7)
	if n == 0 || l > uint64(len(b)-off-n) {
		return 0, 0, false, false
	}
	start = off + n
	return start, start + int(l), b[off]&0x80 != 0, true
}

// hpackInt decodes an HPACK integer with an n-bit prefix (RFC 7541 section
// 5.1). It returns its length, 0 when b ends inside it or it exceeds 2^32.
func hpackInt(b []byte, n uint8) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	mask := uint64(1)<<n - 1
	v := uint64(b[0]) & mask
	if v < mask {
		return v, 1
	}
	for i, shift := 1, uint(0); i < len(b) && shift <= 28; i, shift = i+1, shift+7 {
		v += uint64(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			if v > 1<<32 {
				return 0, 0
			}
			return v, i + 1
		}
	}
	return 0, 0
}
