package graphql

// Bounds on what is kept of a document.
const (
	maxOperations = 16 // operations looked at in one document
	maxFields     = 8  // top-level fields named per operation
	maxName       = 128
)

// operation is one operation definition of a document.
type operation struct {
	typ    string // query, mutation, subscription
	name   string
	fields []string
}

// token kinds of the lexer.
const (
	tkEOF = iota
	tkName
	tkPunct  // one of ! $ & ( ) : = @ [ ] { } |
	tkSpread // ...
	tkValue  // a number or a string
	tkBad
)

// lexer splits a GraphQL document into tokens (GraphQL spec section 2.1),
// skipping white space, commas and comments. It never fails: a byte it
// does not know is a tkBad token.
type lexer struct {
	s   string
	pos int
}

func (l *lexer) next() (kind int, text string) {
	s := l.s
	for l.pos < len(s) {
		switch c := s[l.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			l.pos++
		case c == '#':
			for l.pos < len(s) && s[l.pos] != '\n' && s[l.pos] != '\r' {
				l.pos++
			}
		case c == 0xEF && l.pos+2 < len(s) && s[l.pos+1] == 0xBB && s[l.pos+2] == 0xBF: // BOM
			l.pos += 3
		default:
			return l.token()
		}
	}
	return tkEOF, ""
}

func (l *lexer) token() (int, string) {
	s, start := l.s, l.pos
	c := s[start]
	switch {
	case isNameStart(c):
		l.pos++
		for l.pos < len(s) && (isNameStart(s[l.pos]) || isDigit(s[l.pos])) {
			l.pos++
		}
		return tkName, s[start:l.pos]
	case c == '.':
		if start+2 < len(s) && s[start+1] == '.' && s[start+2] == '.' {
			l.pos += 3
			return tkSpread, "..."
		}
	case c == '"':
		l.str()
		return tkValue, ""
	case c == '-' || isDigit(c):
		l.pos++
		for l.pos < len(s) && (isDigit(s[l.pos]) || isNameStart(s[l.pos]) || s[l.pos] == '.' ||
			s[l.pos] == '+' || s[l.pos] == '-') {
			l.pos++
		}
		return tkValue, ""
	}
	l.pos++
	switch c {
	case '!', '$', '&', '(', ')', ':', '=', '@', '[', ']', '{', '}', '|':
		return tkPunct, s[start:l.pos]
	}
	return tkBad, s[start:l.pos]
}

// str skips a string or block string starting at l.pos.
func (l *lexer) str() {
	s := l.s
	if len(s)-l.pos >= 3 && s[l.pos+1] == '"' && s[l.pos+2] == '"' {
		l.pos += 3
		for l.pos < len(s) {
			switch {
			case s[l.pos] == '\\' && len(s)-l.pos >= 4 && s[l.pos+1:l.pos+4] == `"""`:
				l.pos += 4
			case len(s)-l.pos >= 3 && s[l.pos:l.pos+3] == `"""`:
				l.pos += 3
				return
			default:
				l.pos++
			}
		}
		return
	}
	l.pos++
	for l.pos < len(s) {
		switch s[l.pos] {
		case '\\':
			l.pos += 2
		case '"':
			l.pos++
			return
		case '\n':
			return
		default:
			l.pos++
		}
	}
	l.pos = min(l.pos, len(s))
}

func isNameStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool     { return '0' <= c && c <= '9' }

// parseDocument returns the operations of an executable document. ok is
// false when the text is not one: a token that GraphQL does not have, or a
// top-level definition that is neither an operation nor a fragment.
func parseDocument(doc string) (ops []operation, ok bool) {
	l := &lexer{s: doc}
	for len(ops) < maxOperations {
		kind, text := l.next()
		switch {
		case kind == tkEOF:
			return ops, len(ops) > 0
		case kind == tkPunct && text == "{":
			op := operation{typ: "query"}
			if !selection(l, &op) {
				return ops, len(ops) > 0
			}
			ops = append(ops, op)
		case kind == tkName && (text == "query" || text == "mutation" || text == "subscription"):
			op := operation{typ: text}
			if !operationRest(l, &op) {
				if l.pos < len(l.s) {
					return ops, false // a token GraphQL does not allow there
				}
				ops = append(ops, op) // cut short, e.g. a truncated body
				return ops, true
			}
			ops = append(ops, op)
		case kind == tkName && text == "fragment":
			if !skipToSelection(l) || !selection(l, nil) {
				return ops, len(ops) > 0
			}
		default:
			return ops, false
		}
	}
	return ops, true
}

// operationRest reads an operation's name, skips its variables and
// directives, and reads its selection set.
func operationRest(l *lexer, op *operation) bool {
	save := l.pos
	if kind, text := l.next(); kind == tkName {
		op.name = cut(text, maxName)
	} else {
		l.pos = save
	}
	return skipToSelection(l) && selection(l, op)
}

// skipToSelection skips tokens up to and including the '{' that opens a
// selection set, outside parentheses.
func skipToSelection(l *lexer) bool {
	parens := 0
	for {
		kind, text := l.next()
		switch {
		case kind == tkEOF || kind == tkBad:
			return false
		case (kind == tkValue || kind == tkSpread) && parens <= 0:
			return false // only names, variables and directives come first
		case kind != tkPunct:
		case text == "(":
			parens++
		case text == ")":
			parens--
		case text == "{" && parens <= 0:
			return true
		}
	}
}

// selection reads a selection set whose '{' was just read, up to its '}',
// naming its top-level fields in op (when op is not nil).
func selection(l *lexer, op *operation) bool {
	depth, parens := 1, 0
	// A name right after "...", "... on" or "@" is a fragment, a type
	// condition or a directive, not a field.
	prevSpread, prevOn, prevAt := false, false, false
	for {
		kind, text := l.next()
		switch kind {
		case tkEOF, tkBad:
			return false
		case tkPunct:
			switch text {
			case "{":
				depth++
			case "}":
				if depth--; depth == 0 {
					return true
				}
			case "(":
				parens++
			case ")":
				parens--
			}
		case tkName:
			if op != nil && depth == 1 && parens == 0 && !prevSpread && !prevOn && !prevAt && len(op.fields) < maxFields {
				op.fields = append(op.fields, fieldName(l, text))
			}
		}
		prevOn = prevSpread && kind == tkName && text == "on"
		prevSpread, prevAt = kind == tkSpread, kind == tkPunct && text == "@"
	}
}

// fieldName returns the field a selection names: after an alias, the
// name that follows the colon.
func fieldName(l *lexer, name string) string {
	save := l.pos
	if kind, text := l.next(); kind == tkPunct && text == ":" {
		if kind, field := l.next(); kind == tkName {
			return cut(field, maxName)
		}
	}
	l.pos = save
	return cut(name, maxName)
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
