package filter

import (
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
)

// Error is a compile error: the expression and its problems.
type Error struct {
	Expr   string
	Issues []Issue
}

// Issue is one problem at a position of the expression.
type Issue struct {
	Line    int    `json:"line"`   // from 1
	Column  int    `json:"column"` // from 1, in characters
	Message string `json:"message"`
}

func newError(expr string, iss *cel.Issues) *Error {
	e := &Error{Expr: expr}
	for _, ce := range iss.Errors() {
		msg := oneLine(strings.TrimSuffix(ce.Message, " (in container '')"))
		e.Issues = append(e.Issues, Issue{Line: ce.Location.Line(), Column: ce.Location.Column() + 1, Message: msg})
	}
	return e
}

// Error is one line: `filter: 1:18: undeclared reference to 'stauts'`,
// with further problems after "; ".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("filter: ")
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strconv.Itoa(is.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(is.Column))
		b.WriteString(": ")
		b.WriteString(is.Message)
	}
	return b.String()
}

// Caret renders each problem on its own lines, with the source line and a
// caret under the position:
//
//	1:18: undeclared reference to 'stauts'
//	  | proto == "http" && stauts == "500"
//	  |                    ^
func (e *Error) Caret() string {
	lines := strings.Split(e.Expr, "\n")
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strconv.Itoa(is.Line) + ":" + strconv.Itoa(is.Column) + ": " + is.Message)
		if is.Line < 1 || is.Line > len(lines) {
			continue
		}
		src := strings.ReplaceAll(lines[is.Line-1], "\t", " ")
		b.WriteString("\n  | " + src + "\n  | ")
		col := 0
		for range src {
			if col++; col >= is.Column {
				break
			}
			b.WriteByte(' ')
		}
		b.WriteByte('^')
	}
	return b.String()
}

// oneLine escapes the line breaks and other control characters that a
// message may quote from the expression.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case isControl(r):
			b.WriteString(strconv.QuoteRune(r)[1 : len(strconv.QuoteRune(r))-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < ' ' || r == 0x7F || (r >= 0x80 && r < 0xA0) }
