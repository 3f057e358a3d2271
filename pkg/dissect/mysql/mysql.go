// Package mysql dissects the MySQL/MariaDB classic client/server protocol:
// the connection phase (greeting, login, authentication exchanges) as one
// entry, then one entry per command with its outcome: OK (affected rows),
// ERR (code, SQL state, message) or result sets (columns, rows counted,
// several when the server says more results exist), text and binary
// (prepared statement) protocols alike.
//
// Entries: Method is the SQL statement's first keyword for COM_QUERY
// (SELECT, INSERT, ...; QUERY when unknown), else the command name without
// its COM_ prefix (STMT_EXECUTE, PING, HANDSHAKE); Path is the SQL text (the
// prepared text for statement commands), the schema of COM_INIT_DB or the
// user of the handshake; Status is "OK", "ERR <code>", or empty for the
// commands the server does not answer (COM_QUIT, COM_STMT_CLOSE). With
// Options.Redact, string literals after IDENTIFIED or PASSWORD are replaced.
//
// Prepared statements are remembered per connection (bounded), so that an
// execute shows the SQL text it runs. A connection that switches to TLS
// (SSLRequest) is handed to the TLS hello dissector; one that negotiates the
// compressed protocol is reported and no longer parsed.
package mysql

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Capability flags (client and server) this parser depends on.
const (
	capConnectWithDB     = 1 << 3
	capCompress          = 1 << 5
	capProtocol41        = 1 << 9
	capSSL               = 1 << 11
	capSecureConnection  = 1 << 15
	capPluginAuth        = 1 << 19
	capPluginAuthLenenc  = 1 << 21
	capDeprecateEOF      = 1 << 24
	capQueryAttributes   = 1 << 27
	serverMoreResults    = 0x0008
	serverCursorExists   = 0x0040
	maxPacket            = 1<<24 - 1 // a payload this long continues in the next packet
	protocolVersion10    = 0x0A
	headerLen            = 4
	maxServerPayloadKept = 2 << 10
	// maxQuery bounds the SQL text kept of a command.
	maxQuery = 4 << 10
	// maxClientPayloadKept is what is kept of a client packet: the SQL
	// text and the command byte, or a login packet.
	maxClientPayloadKept = maxQuery + 64
	// maxStatements bounds the prepared statements remembered per
	// connection.
	maxStatements = 256
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse   = "no response"
	errIncomplete   = "incomplete response"
	errGap          = "capture gap"
	errCompressed   = "compressed protocol not dissected"
	errUnknownReply = "unexpected response"
)

// Protocol returns the MySQL dissector.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:   entry.ProtoMySQL,
		Ports:  []uint16{3306, 3307, 33060},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit)
		},
	}
}

// Detect says Yes to a server greeting (protocol version 10, a printable
// version string), to a client's login packet, and to a command packet
// carrying SQL that starts with a known keyword (a connection captured
// after its start).
func Detect(data []byte) (dissect.Verdict, bool) {
	if len(data) < headerLen+1 {
		if len(data) >= 4 && data[3] > 1 {
			return dissect.No, false
		}
		return dissect.Maybe, false
	}
	n := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	seq, body := data[3], data[headerLen:]
	if n == 0 {
		return dissect.No, false
	}
	switch {
	case seq == 0 && body[0] == protocolVersion10:
		return detectGreeting(n, body)
	case seq == 1 && n >= 32:
		return detectLogin(n, body)
	case seq == 0 && n <= maxPacket && (body[0] == comQuery || body[0] == comStmtPrepare):
		if len(body) < min(n, 8) {
			return dissect.Maybe, false
		}
		if _, ok := sqlVerb(body[1:min(len(body), n)]); ok {
			return dissect.Yes, true
		}
	}
	return dissect.No, false
}

// detectGreeting checks a greeting's version string: printable bytes up to
// a NUL, within the packet.
func detectGreeting(n int, body []byte) (dissect.Verdict, bool) {
	if n < 20 || n > 1024 {
		return dissect.No, false
	}
	for i := 1; i < min(len(body), n); i++ {
		c := body[i]
		switch {
		case c == 0:
			if i < 2 {
				return dissect.No, false
			}
			return dissect.Yes, false
		case c < 0x20 || c > 0x7E:
			return dissect.No, false
		}
	}
	if len(body) >= n {
		return dissect.No, false
	}
	return dissect.Maybe, false
}

// detectLogin checks a HandshakeResponse41 (or SSLRequest): protocol 4.1
// capabilities and 23 filler bytes of which the first 19 are zero (MariaDB
// puts its extended capabilities in the last 4).
func detectLogin(n int, body []byte) (dissect.Verdict, bool) {
	if len(body) < 32 {
		return dissect.Maybe, false
	}
	caps := le32(body)
	if caps&capProtocol41 == 0 || n > 64<<10 {
		return dissect.No, false
	}
	for _, c := range body[9:28] {
		if c != 0 {
			return dissect.No, false
		}
	}
	return dissect.Yes, true
}

func le16(b []byte) int { return int(b[0]) | int(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// newParser returns the parser of one connection.
func newParser(c *dissect.Conn, emit dissect.Emitter) *parser {
	if c.Opts == nil {
		cc, opts := *c, dissect.DefaultOptions()
		cc.Opts = &opts
		c = &cc
	}
	p := &parser{conn: c, emit: emit, redact: c.Opts.Redact}
	p.tmpl = *c.NewEntry(entry.ProtoMySQL, time.Time{})
	p.cli = half{dir: dissect.ClientToServer, limit: maxClientPayloadKept}
	p.srv = half{dir: dissect.ServerToClient, limit: maxServerPayloadKept}
	return p
}
