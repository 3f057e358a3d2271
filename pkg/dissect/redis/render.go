package redis

import (
	"bytes"
	"strconv"
)

// maxReply bounds the rendered reply of an entry.
const maxReply = 1 << 10

// typeName names a RESP type as entries show it.
func typeName(t byte) string {
	switch t {
	case tSimple:
		return "simple"
	case tError, tBlobError:
		return "error"
	case tInteger:
		return "integer"
	case tBulk:
		return "bulk"
	case tArray:
		return "array"
	case tNull:
		return "null"
	case tDouble:
		return "double"
	case tBool:
		return "boolean"
	case tVerbatim:
		return "verbatim"
	case tBigNum:
		return "bignum"
	case tMap:
		return "map"
	case tSet:
		return "set"
	case tPush:
		return "push"
	}
	return ""
}

// status is an entry's Status for a reply: OK, the error's code (ERR,
// WRONGTYPE, MOVED, ...), nil for a null, or the reply's type.
func status(v *value) string {
	switch {
	case v.null || v.kind == tNull:
		return "nil"
	case v.kind == tSimple && len(v.elems) > 0 && string(v.text(0)) == "OK":
		return "OK"
	case v.kind == tError || v.kind == tBlobError:
		if len(v.elems) > 0 {
			w := v.text(0)
			if i := bytes.IndexByte(w, ' '); i > 0 {
				w = w[:i]
			}
			if code, ok := errorCodes[string(w)]; ok {
				return code
			}
			if isUpperWord(w) {
				return string(w)
			}
		}
		return "error"
	}
	return typeName(v.kind)
}

// errorCodes interns the common error codes, so status does not allocate.
var errorCodes = map[string]string{}

func init() {
	for _, c := range []string{"ERR", "WRONGTYPE", "NOAUTH", "WRONGPASS", "NOPERM", "MOVED", "ASK",
		"TRYAGAIN", "CROSSSLOT", "CLUSTERDOWN", "LOADING", "BUSY", "NOSCRIPT", "READONLY",
		"MASTERDOWN", "MISCONF", "EXECABORT", "NOREPLICAS", "NOPROTO", "NOGROUP", "BUSYGROUP", "OOM", "UNBLOCKED"} {
		errorCodes[c] = c
	}
}

func isUpperWord(w []byte) bool {
	if len(w) == 0 || len(w) > 32 {
		return false
	}
	for _, c := range w {
		if (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// render writes a reply as text: a scalar as its value, an aggregate as
// its first elements in brackets ([a, b, 3] or {k: v}), bounded.
func render(v *value) string {
	if v.null || v.kind == tNull {
		return "(nil)"
	}
	if !v.aggregate() {
		if len(v.elems) == 0 {
			return ""
		}
		switch t := v.text(0); string(t) { // the common replies, without allocating
		case "OK":
			return "OK"
		case "PONG":
			return "PONG"
		case "QUEUED":
			return "QUEUED"
		case "0":
			return "0"
		case "1":
			return "1"
		}
		return elemText(v, 0)
	}
	open, close := byte('['), byte(']')
	if v.kind == tMap {
		open, close = '{', '}'
	}
	b := make([]byte, 0, 64)
	b = append(b, open)
	for i := range v.elems {
		if len(b) > maxReply {
			break
		}
		if i > 0 {
			if v.kind == tMap && i%2 == 1 {
				b = append(b, ": "...)
			} else {
				b = append(b, ", "...)
			}
		}
		b = appendElem(b, v, i)
	}
	if more := v.count - int64(len(v.elems)); more > 0 {
		b = append(b, ", … "...)
		b = strconv.AppendInt(b, more, 10)
		b = append(b, " more"...)
	}
	return string(append(b, close))
}

func appendElem(b []byte, v *value, i int) []byte {
	e := &v.elems[i]
	switch {
	case e.null || e.kind == tNull:
		return append(b, "nil"...)
	case e.count:
		b = append(b, '(')
		b = append(b, typeName(e.kind)...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.full, 10)
		return append(b, ')')
	case e.kind == tBulk || e.kind == tSimple || e.kind == tVerbatim:
		b = strconv.AppendQuote(b, string(v.text(i)))
		if int64(e.n) < e.full {
			b = append(b, "…"...)
		}
		return b
	}
	return append(b, v.text(i)...)
}
