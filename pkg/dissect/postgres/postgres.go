// Package postgres dissects the PostgreSQL frontend/backend protocol 3.0
// into entries: one per statement, with its SQL, CommandComplete tag, row
// count and ErrorResponse (SQLSTATE and message).
//
// Method names the protocol flow: "Query" for the simple protocol (a Query
// holding several statements gives one entry per statement), "Execute" for
// the extended one (Parse, Bind, Describe and Execute are followed, so the
// entry carries the SQL of the prepared statement the portal was bound
// to), "Parse", "Bind" or "Describe" when such a step failed,
// "FunctionCall", "Startup" (user, database, application, and in Command
// the authentication method), "SSLRequest" and "GSSENCRequest" (Status
// accepted or refused; after an acceptance the connection is encrypted and
// nothing more is read), "CancelRequest", and "Notification" for a
// LISTEN/NOTIFY message. Path is the SQL with blanks collapsed, cut at
// 256 bytes; Status is the CommandComplete tag ("SELECT 5", "INSERT 0 1"),
// "ERROR <SQLSTATE>", "empty" or "suspended". Passwords and SASL messages
// are never read, and no bound parameter value is shown.
//
// Memory is bounded: a message keeps at most 16 KiB of SQL (and less of
// others; rows and copy data are counted, not kept), at most 4096 client
// messages wait for responses, and at most 1024 prepared statements and
// portals (2 MiB of SQL) are remembered.
package postgres

import (
	"encoding/binary"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Protocol returns the PostgreSQL dissector.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:   entry.ProtoPostgres,
		Ports:  []uint16{5432, 5433, 6432},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit)
		},
	}
}

// Detect recognises a connection's startup-phase message (StartupMessage
// 3.x, SSLRequest, GSSENCRequest, CancelRequest), from the client; or,
// mid-connection, a run of well-formed typed messages of either side with
// at least one whose content checks out (a Query or Parse with its SQL, a
// ReadyForQuery, a CommandComplete, an authentication request).
func Detect(data []byte) (dissect.Verdict, bool) {
	if len(data) == 0 {
		return dissect.Maybe, false
	}
	if data[0] == 0 {
		return detectStartup(data)
	}
	if v := detectTyped(data, true); v != dissect.No {
		return v, true
	}
	return detectTyped(data, false), false
}

func detectStartup(data []byte) (dissect.Verdict, bool) {
	if len(data) < 8 {
		return dissect.Maybe, true
	}
	n := binary.BigEndian.Uint32(data)
	code := binary.BigEndian.Uint32(data[4:])
	switch {
	case code == codeSSL || code == codeGSSENC:
		if n == 8 {
			return dissect.Yes, true
		}
	case code == codeCancel:
		if n == 16 {
			return dissect.Yes, true
		}
	case code>>16 == 3 && code&0xFFFF < 16 && n >= 9 && n <= 10000:
		return startupParams(data[8:min(len(data), int(n))], len(data) >= int(n)), true
	}
	return dissect.No, false
}

// startupParams checks a StartupMessage's parameters: printable name and
// value pairs, ending with an empty name, that include "user" (which the
// protocol requires). complete says b holds the whole message.
func startupParams(b []byte, complete bool) dissect.Verdict {
	user := false
	for {
		k, rest, ok := cstring(b)
		if !ok {
			break
		}
		if len(k) == 0 {
			if user && len(rest) == 0 {
				return dissect.Yes
			}
			return dissect.No
		}
		v, rest2, ok := cstring(rest)
		if !printable(k) || !printable(v) {
			return dissect.No
		}
		if !ok {
			break
		}
		user = user || string(k) == "user"
		b = rest2
	}
	if complete || !printable(b) {
		return dissect.No
	}
	return dissect.Maybe
}

// detectTyped walks the typed messages of one side: Yes after a message
// whose content checks out, with every message before it well formed.
func detectTyped(data []byte, client bool) dissect.Verdict {
	for len(data) > 0 {
		if len(data) < 5 {
			if known(data[0], client) {
				return dissect.Maybe
			}
			return dissect.No
		}
		t, n := data[0], int(binary.BigEndian.Uint32(data[1:]))
		if !known(t, client) || n < 4 || n > 1<<24 {
			return dissect.No
		}
		if len(data) < 1+n {
			return dissect.Maybe
		}
		switch check(t, data[5:1+n], client) {
		case dissect.Yes:
			return dissect.Yes
		case dissect.No:
			return dissect.No
		}
		data = data[1+n:]
	}
	return dissect.Maybe
}

func known(t byte, client bool) bool {
	if client {
		switch t {
		case 'Q', 'P', 'B', 'D', 'E', 'S', 'H', 'C', 'X', 'F', 'd', 'c', 'f':
			return true
		}
		return false
	}
	switch t {
	case 'R', 'K', 'S', 'Z', 'T', 'D', 'C', 'E', 'N', 'I', '1', '2', '3', 't', 'n', 's', 'A', 'G', 'H', 'W', 'd', 'c', 'V', 'v':
		return true
	}
	return false
}

// check judges one complete message's content: Yes when it is
// distinctive and right, No when it is wrong, Maybe when it says little.
func check(t byte, b []byte, client bool) dissect.Verdict {
	switch {
	case client && t == 'Q':
		return sqlString(b)
	case client && t == 'P':
		_, rest, ok := cstring(b) // the statement name, then the SQL
		if !ok {
			return dissect.No
		}
		return sqlString(rest)
	case client && (t == 'S' || t == 'H' || t == 'X'):
		if len(b) != 0 {
			return dissect.No
		}
	case !client && t == 'Z':
		if len(b) == 1 && (b[0] == 'I' || b[0] == 'T' || b[0] == 'E') {
			return dissect.Yes
		}
		return dissect.No
	case !client && t == 'C':
		tag, rest, ok := cstring(b)
		if !ok || len(rest) != 0 || len(tag) == 0 || !printable(tag) {
			return dissect.No
		}
		return dissect.Yes
	case !client && t == 'R':
		code, ok := u32(b)
		if !ok || code > 12 {
			return dissect.No
		}
		return dissect.Yes
	}
	return dissect.Maybe
}

// sqlString checks for NUL-terminated text (a Query's whole payload, or
// the start of a Parse's remainder).
func sqlString(b []byte) dissect.Verdict {
	s, _, ok := cstring(b)
	if !ok || len(s) == 0 || !printable(s) {
		return dissect.No
	}
	return dissect.Yes
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
