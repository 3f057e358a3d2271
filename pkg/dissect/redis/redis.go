// Package redis dissects the Redis serialization protocol, RESP2 and RESP3
// (inline commands included), into entries: one per command and its reply,
// and one per pushed pub/sub message.
//
// Replies are paired with commands in order, so pipelined commands (many
// in one segment) each get their entry. Method is the command name in
// upper case (a container command with its subcommand: "CONFIG GET"), Path
// its first key (or a pub/sub channel), and Status OK, the error code (ERR,
// WRONGTYPE, ...), nil, or the reply's type (integer, bulk, array, map,
// ...). SUBSCRIBE waits for one confirmation per channel; messages pushed
// to a subscribed connection (RESP2 arrays or RESP3 pushes) and the lines
// MONITOR streams are entries of their own with Status "push". CLIENT
// REPLY OFF and SKIP are followed, so unanswered commands do not shift the
// pairing. Credentials (AUTH, HELLO ... AUTH, CONFIG SET requirepass, ACL
// SETUSER >pass) are redacted when Options.Redact is set.
//
// Memory is bounded: a reader holds at most one line (64 KiB, Redis's own
// inline limit) and the first 10 elements of a value, 256 bytes each; bulk
// strings are counted, not held. At most 4096 commands (2 MiB) wait for
// replies; beyond that, commands and their replies are counted as dropped.
package redis

import (
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Protocol returns the Redis dissector.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:   entry.ProtoRedis,
		Ports:  []uint16{6379, 6380, 26379},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit)
		},
	}
}

// Detect recognises the first bytes of either side. A command array whose
// first element names a known command is Yes, from the client; so is a
// RESP3 map of bulk strings (the reply to HELLO 3), from the server. Other
// well-formed replies, and inline commands, are Maybe: they are too like
// other text protocols to claim a connection off the Redis ports.
func Detect(data []byte) (dissect.Verdict, bool) {
	if len(data) == 0 {
		return dissect.Maybe, false
	}
	switch data[0] {
	case tArray:
		return detectCommand(data)
	case tMap:
		if v := detectHeader(data); v != dissect.Yes {
			return v, false
		}
		// A map of bulk strings: HELLO's reply.
		if i := indexEOL(data); i > 0 && i+2 < len(data) && data[i+2] == tBulk {
			return dissect.Yes, false
		}
		return dissect.Maybe, false
	case tSimple, tError, tInteger, tBulk, tNull, tBool, tDouble, tPush, tSet, tVerbatim, tBlobError, tBigNum:
		if detectHeader(data) == dissect.No {
			return dissect.No, false
		}
		return dissect.Maybe, false
	}
	return detectInline(data)
}

// detectCommand checks *N CRLF $M CRLF name, with name a known command.
func detectCommand(data []byte) (dissect.Verdict, bool) {
	i := indexEOL(data)
	if i == -2 {
		return dissect.No, false
	}
	if i < 0 {
		return short(data)
	}
	if n, ok := parseInt(data[1:i]); !ok || n < 1 || n > 1<<20 {
		return dissect.No, false
	}
	rest := data[i+2:]
	if len(rest) == 0 {
		return dissect.Maybe, true
	}
	if rest[0] != tBulk {
		return dissect.No, false
	}
	j := indexEOL(rest)
	if j == -2 {
		return dissect.No, false
	}
	if j < 0 {
		return short(rest)
	}
	m, ok := parseInt(rest[1:j])
	if !ok || m < 1 || m > 24 {
		return dissect.No, false
	}
	name := rest[j+2:]
	if int64(len(name)) < m+2 {
		return dissect.Maybe, true
	}
	if _, known := lookup(name[:m]); !known || name[m] != '\r' || name[m+1] != '\n' {
		return dissect.No, false
	}
	return dissect.Yes, true
}

// detectHeader checks that the first line of a reply is well formed.
func detectHeader(data []byte) dissect.Verdict {
	i := indexEOL(data)
	if i == -2 {
		return dissect.No
	}
	if i < 0 {
		if v, _ := short(data); v == dissect.No {
			return dissect.No
		}
		return dissect.Maybe
	}
	line := data[1:i]
	switch data[0] {
	case tInteger, tBulk, tMap, tPush, tSet, tVerbatim, tBlobError:
		if _, ok := parseInt(line); !ok {
			return dissect.No
		}
	case tNull:
		if len(line) != 0 {
			return dissect.No
		}
	case tBool:
		if len(line) != 1 || (line[0] != 't' && line[0] != 'f') {
			return dissect.No
		}
	default:
		for _, c := range line {
			if c < ' ' && c != '\t' {
				return dissect.No
			}
		}
	}
	return dissect.Yes
}

// detectInline checks for an inline command: a known command name, then a
// blank or the end of the line.
func detectInline(data []byte) (dissect.Verdict, bool) {
	end := 0
	for end < len(data) && end < 25 && data[end] != ' ' && data[end] != '\r' && data[end] != '\n' {
		end++
	}
	if end == len(data) && end < 25 {
		if end > 0 && isLetters(data) {
			return dissect.Maybe, true
		}
		return dissect.No, false
	}
	if _, known := lookup(data[:end]); !known {
		return dissect.No, false
	}
	i := indexEOL(data)
	if i < 0 && len(data) >= maxLine {
		return dissect.No, false
	}
	return dissect.Maybe, true
}

func isLetters(b []byte) bool {
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// short judges a line that has no CRLF yet: Maybe while it may still be
// one, No once it is too long or holds what a RESP header cannot.
func short(data []byte) (dissect.Verdict, bool) {
	if len(data) > 24 {
		return dissect.No, false
	}
	for _, c := range data[1:] {
		if !isDigit(c) && c != '-' && c != '\r' {
			return dissect.No, false
		}
	}
	return dissect.Maybe, data[0] == tArray
}

// indexEOL returns the index of the first CRLF, -1 when there is none
// yet, and -2 when a bare LF comes first (not RESP).
func indexEOL(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
		if b[i] == '\n' {
			return -2 // a bare LF: not RESP
		}
	}
	return -1
}
