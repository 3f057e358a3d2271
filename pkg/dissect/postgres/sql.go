package postgres

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxPath bounds the SQL shown in Entry.Path; Postgres.Query keeps more.
const maxPath = 256

// splitSQL splits a simple Query's string into its statements the way the
// server does, so that each CommandComplete gets its own SQL: at
// semicolons outside quotes ('...', E'...', "..."), dollar quotes
// ($tag$...$tag$) and comments (-- and nested /* */). Statements of only
// blanks and comments are left out, as the server skips them. The result
// has at most max statements; the last holds the rest.
func splitSQL(sql string, max int) []string {
	var out []string
	start := 0
	for i := 0; i < len(sql); {
		switch c := sql[i]; {
		case c == '\'':
			i = skipQuoted(sql, i, '\'', i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e'))
		case c == '"':
			i = skipQuoted(sql, i, '"', false)
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			i = skipComment(sql, i)
		case c == '$':
			i = skipDollar(sql, i)
		case c == ';' && len(out) < max-1:
			if s := strings.TrimSpace(sql[start:i]); !blank(s) {
				out = append(out, s)
			}
			i++
			start = i
		default:
			i++
		}
	}
	if s := strings.TrimSpace(sql[start:]); !blank(s) {
		out = append(out, s)
	}
	return out
}

// skipQuoted returns the index after the quote that closes the one at i;
// a doubled quote is a literal one, and so is a backslash-escaped one in
// an E” string.
func skipQuoted(s string, i int, q byte, backslash bool) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

func skipComment(s string, i int) int {
	depth := 0
	for j := i; j+1 < len(s); j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j++
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// skipDollar skips a dollar-quoted string starting at i ($$ or $tag$); a
// $ that starts none (a parameter $1) is skipped alone.
func skipDollar(s string, i int) int {
	j := i + 1
	for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' && j > i+1) {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return i + 1
	}
	tag := s[i : j+1]
	if k := strings.Index(s[j+1:], tag); k >= 0 {
		return j + 1 + k + len(tag)
	}
	return len(s)
}

// blank reports whether s holds only blanks and comments.
func blank(s string) bool {
	for i := 0; i < len(s); {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f':
			i++
		case strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return true
			}
			i += j + 1
		case strings.HasPrefix(s[i:], "/*"):
			i = skipComment(s, i)
		default:
			return false
		}
	}
	return true
}

// shortSQL is SQL for Entry.Path: trimmed, runs of blanks collapsed to
// one space, cut at maxPath bytes.
func shortSQL(sql string) string {
	sql = strings.TrimSpace(sql)
	if len(sql) <= maxPath && !strings.ContainsAny(sql, "\t\n\r") && !strings.Contains(sql, "  ") {
		return sql
	}
	b := make([]byte, 0, min(len(sql), maxPath+1))
	space := false
	i := 0
	for ; i < len(sql) && (len(b) < maxPath || sql[i]&0xC0 == 0x80); i++ { // cut at a rune's start
		switch c := sql[i]; c {
		case ' ', '\t', '\n', '\r':
			space = true
		default:
			if space {
				b = append(b, ' ')
				space = false
			}
			b = append(b, c)
		}
	}
	if i == len(sql) {
		return string(b)
	}
	return string(b) + "…"
}

// trimPartial drops a UTF-8 sequence cut short at the end of s.
func trimPartial(s string) string {
	j := len(s) - 1
	for j > 0 && j > len(s)-4 && s[j]&0xC0 == 0x80 {
		j--
	}
	if j >= 0 && s[j] >= 0xC0 && !utf8.FullRuneInString(s[j:]) {
		return s[:j]
	}
	return s
}

// tagRows returns the row count of a CommandComplete tag ("SELECT 5",
// "INSERT 0 1", "UPDATE 3"), and whether the tag has one.
func tagRows(tag string) (int64, bool) {
	verb, _, _ := strings.Cut(tag, " ")
	switch verb {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY":
	default:
		return 0, false
	}
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	return n, err == nil
}
