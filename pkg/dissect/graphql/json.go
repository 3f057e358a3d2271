package graphql

import (
	"strings"
	"unicode/utf8"
)

// scanner reads just enough JSON to find a few fields, without building
// values, and tolerates a document cut short (a body at the capture limit):
// every method stops at the end of the text.
type scanner struct {
	s   string
	pos int
}

func (sc *scanner) skipSpace() {
	for sc.pos < len(sc.s) {
		switch sc.s[sc.pos] {
		case ' ', '\t', '\r', '\n':
			sc.pos++
		default:
			return
		}
	}
}

func (sc *scanner) peek(c byte) bool {
	sc.skipSpace()
	return sc.pos < len(sc.s) && sc.s[sc.pos] == c
}

func (sc *scanner) consume(c byte) bool {
	if sc.peek(c) {
		sc.pos++
		return true
	}
	return false
}

func (sc *scanner) colon() bool { return sc.consume(':') }

// str reads a string; with decode, its value (escapes resolved, cut to
// what the text holds). ok is false when there is no whole string here.
func (sc *scanner) str(decode bool) (string, bool) {
	if !sc.consume('"') {
		return "", false
	}
	start := sc.pos
	var b *strings.Builder
	for sc.pos < len(sc.s) {
		switch c := sc.s[sc.pos]; c {
		case '"':
			v := sc.s[start:sc.pos]
			sc.pos++
			if b != nil {
				b.WriteString(v)
				return b.String(), true
			}
			return v, true
		case '\\':
			if !decode {
				sc.pos += 2
				continue
			}
			if b == nil {
				b = &strings.Builder{}
			}
			b.WriteString(sc.s[start:sc.pos])
			sc.escape(b)
			start = sc.pos
		default:
			sc.pos++
		}
	}
	sc.pos = len(sc.s)
	if !decode {
		return "", false
	}
	if b != nil {
		b.WriteString(sc.s[start:])
		return b.String(), false
	}
	return sc.s[start:], false
}

// escape decodes the escape sequence at sc.pos into b.
func (sc *scanner) escape(b *strings.Builder) {
	s := sc.s
	if sc.pos+1 >= len(s) {
		sc.pos = len(s)
		return
	}
	c := s[sc.pos+1]
	sc.pos += 2
	switch c {
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'u':
		r := sc.hex4()
		if 0xD800 <= r && r < 0xDC00 && strings.HasPrefix(s[sc.pos:], `\u`) {
			sc.pos += 2
			if lo := sc.hex4(); 0xDC00 <= lo && lo < 0xE000 {
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			}
		}
		b.WriteRune(rune(r))
	default: // " \ / and anything else, as it is
		b.WriteByte(c)
	}
}

func (sc *scanner) hex4() int {
	if sc.pos+4 > len(sc.s) {
		sc.pos = len(sc.s)
		return utf8.RuneError
	}
	v := 0
	for _, c := range []byte(sc.s[sc.pos : sc.pos+4]) {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return utf8.RuneError
		}
	}
	sc.pos += 4
	return v
}

// skipValue skips one value of any kind; false when the text ends first.
func (sc *scanner) skipValue() bool {
	depth := 0
	for {
		sc.skipSpace()
		if sc.pos >= len(sc.s) {
			return false
		}
		switch c := sc.s[sc.pos]; c {
		case '"':
			if _, ok := sc.str(false); !ok {
				return false
			}
		case '{', '[':
			depth++
			sc.pos++
		case '}', ']':
			depth--
			sc.pos++
		case ',', ':':
			sc.pos++
			continue
		default: // a number, true, false, null
			for sc.pos < len(sc.s) && !strings.ContainsRune(" \t\r\n,:]}", rune(sc.s[sc.pos])) {
				sc.pos++
			}
		}
		if depth <= 0 {
			return depth == 0
		}
	}
}

// countValues counts the values of the array being read (its '[' read)
// up to its ']' or the end of the text.
func (sc *scanner) countValues() int {
	n := 0
	for {
		sc.skipSpace()
		if sc.pos >= len(sc.s) || sc.consume(']') {
			return n
		}
		n++
		if !sc.skipValue() {
			return n
		}
		sc.consume(',')
	}
}

// objectStrings reads the object at sc.pos and returns the string values
// of the two keys ("" when absent); a string cut by the end of the text
// gives what there is of it.
func (sc *scanner) objectStrings(k0, k1 string) [2]string {
	var out [2]string
	if !sc.consume('{') {
		return out
	}
	for {
		sc.skipSpace()
		if sc.pos >= len(sc.s) || sc.consume('}') {
			return out
		}
		key, ok := sc.str(true)
		if !ok || !sc.colon() {
			return out
		}
		i := -1
		switch key {
		case k0:
			i = 0
		case k1:
			i = 1
		}
		if i >= 0 && sc.peek('"') {
			v, ok := sc.str(true)
			out[i] = v
			if !ok {
				return out
			}
		} else if !sc.skipValue() {
			return out
		}
		sc.consume(',')
	}
}

// errorList reads the errors array (its '[' read): the number of entries
// and the first messages.
func (sc *scanner) errorList() (n int, msgs []string) {
	for {
		sc.skipSpace()
		if sc.pos >= len(sc.s) || sc.consume(']') {
			return n, msgs
		}
		n++
		if sc.peek('{') {
			m := sc.objectStrings("message", "")[0]
			if len(msgs) < maxErrors {
				msgs = append(msgs, cut(m, maxErrorMessage))
			}
		} else if !sc.skipValue() {
			return n, msgs
		}
		sc.consume(',')
	}
}
