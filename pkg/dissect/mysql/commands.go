package mysql

import (
	"bytes"
	"strings"
)

// Command bytes (the first byte of a command packet).
const (
	comSleep            = 0x00
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comCreateDB         = 0x05
	comDropDB           = 0x06
	comRefresh          = 0x07
	comShutdown         = 0x08
	comStatistics       = 0x09
	comProcessInfo      = 0x0A
	comConnect          = 0x0B
	comProcessKill      = 0x0C
	comDebug            = 0x0D
	comPing             = 0x0E
	comTime             = 0x0F
	comDelayedInsert    = 0x10
	comChangeUser       = 0x11
	comBinlogDump       = 0x12
	comTableDump        = 0x13
	comConnectOut       = 0x14
	comRegisterSlave    = 0x15
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1A
	comSetOption        = 0x1B
	comStmtFetch        = 0x1C
	comDaemon           = 0x1D
	comBinlogDumpGTID   = 0x1E
	comResetConnection  = 0x1F
	comStmtBulkExecute  = 0xFA // MariaDB
)

var commandNames = [...]string{
	comSleep: "COM_SLEEP", comQuit: "COM_QUIT", comInitDB: "COM_INIT_DB", comQuery: "COM_QUERY",
	comFieldList: "COM_FIELD_LIST", comCreateDB: "COM_CREATE_DB", comDropDB: "COM_DROP_DB",
	comRefresh: "COM_REFRESH", comShutdown: "COM_SHUTDOWN", comStatistics: "COM_STATISTICS",
	comProcessInfo: "COM_PROCESS_INFO", comConnect: "COM_CONNECT", comProcessKill: "COM_PROCESS_KILL",
	comDebug: "COM_DEBUG", comPing: "COM_PING", comTime: "COM_TIME", comDelayedInsert: "COM_DELAYED_INSERT",
	comChangeUser: "COM_CHANGE_USER", comBinlogDump: "COM_BINLOG_DUMP", comTableDump: "COM_TABLE_DUMP",
	comConnectOut: "COM_CONNECT_OUT", comRegisterSlave: "COM_REGISTER_SLAVE",
	comStmtPrepare: "COM_STMT_PREPARE", comStmtExecute: "COM_STMT_EXECUTE",
	comStmtSendLongData: "COM_STMT_SEND_LONG_DATA", comStmtClose: "COM_STMT_CLOSE",
	comStmtReset: "COM_STMT_RESET", comSetOption: "COM_SET_OPTION", comStmtFetch: "COM_STMT_FETCH",
	comDaemon: "COM_DAEMON", comBinlogDumpGTID: "COM_BINLOG_DUMP_GTID",
	comResetConnection: "COM_RESET_CONNECTION",
}

// knownCommand reports whether c is a command byte.
func knownCommand(c byte) bool {
	return int(c) < len(commandNames) || c == comStmtBulkExecute
}

// commandName names a command, COM_QUERY style.
func commandName(c byte) string {
	switch {
	case c == comStmtBulkExecute:
		return "COM_STMT_BULK_EXECUTE"
	case int(c) < len(commandNames):
		return commandNames[c]
	}
	return "COM_" + hex8(c)
}

// methodName is the entry method of a command other than a query: its
// name without the COM_ prefix.
func methodName(c byte) string {
	return strings.TrimPrefix(commandName(c), "COM_")
}

func hex8(c byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{'0', 'x', digits[c>>4], digits[c&0xF]})
}

// hasResultSet says whether a command's response may be a result set.
func hasResultSet(c byte) bool {
	switch c {
	case comQuery, comStmtExecute, comProcessInfo, comStmtBulkExecute:
		return true
	}
	return false
}

// noResponse says whether the server sends nothing back to a command.
func noResponse(c byte) bool {
	switch c {
	case comQuit, comStmtClose, comStmtSendLongData:
		return true
	}
	return false
}

// sqlVerbs are the first keywords of SQL statements, upper case.
var sqlVerbs = func() map[string]string {
	m := map[string]string{}
	for _, v := range strings.Fields(`SELECT INSERT UPDATE DELETE REPLACE CREATE DROP ALTER SET SHOW USE
		BEGIN START COMMIT ROLLBACK CALL EXPLAIN DESCRIBE DESC WITH GRANT REVOKE TRUNCATE LOCK UNLOCK
		PREPARE EXECUTE DEALLOCATE LOAD RENAME ANALYZE OPTIMIZE CHECK CHECKSUM REPAIR FLUSH KILL
		SAVEPOINT RELEASE HANDLER DO XA VALUES TABLE INSTALL UNINSTALL RESET PURGE CHANGE HELP
		SIGNAL RESIGNAL BACKUP SHUTDOWN`) {
		m[v] = v
	}
	return m
}()

// sqlVerb returns the first keyword of a statement, upper case, skipping
// blanks, comments and opening parentheses; ok is false when it is not a
// known statement keyword.
func sqlVerb(b []byte) (verb string, ok bool) {
	i := skipSpaceAndComments(b)
	var buf [16]byte
	n := 0
	for ; i < len(b) && n < len(buf); i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			break
		}
		buf[n] = c
		n++
	}
	if i < len(b) && n == len(buf) {
		return "", false
	}
	v, ok := sqlVerbs[string(buf[:n])]
	return v, ok
}

// skipSpaceAndComments returns the offset of the first byte of b that is
// not a blank, an opening parenthesis or inside a comment.
func skipSpaceAndComments(b []byte) int {
	i := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '#' || c == '-' && i+2 < len(b) && b[i+1] == '-' && (b[i+2] == ' ' || b[i+2] == '\t'):
			for i < len(b) && b[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			end := indexAfter(b, i+2, "*/")
			if end < 0 {
				return len(b)
			}
			i = end
		default:
			return i
		}
	}
	return i
}

// indexAfter returns the offset just past the first sep in b[from:], or -1.
func indexAfter(b []byte, from int, sep string) int {
	if i := bytes.Index(b[from:], []byte(sep)); i >= 0 {
		return from + i + len(sep)
	}
	return -1
}

// lenenc reads a length-encoded integer; n is its size, 0 when b is too
// short or starts with a byte that is not one.
func lenenc(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch c := b[0]; {
	case c < 0xFB:
		return uint64(c), 1
	case c == 0xFC && len(b) >= 3:
		return uint64(b[1]) | uint64(b[2])<<8, 3
	case c == 0xFD && len(b) >= 4:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case c == 0xFE && len(b) >= 9:
		for i := 8; i >= 1; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v, 9
	}
	return 0, 0
}

// cstring returns the NUL-terminated string at the start of b and the rest
// after the NUL (all of b, and nil, when there is no NUL).
func cstring(b []byte) (string, []byte) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:]
		}
	}
	return string(b), nil
}

// redactSQL replaces the string literal after IDENTIFIED BY, PASSWORD or
// PASSWORD( with entry.Redacted, so credentials in account statements
// never leave the node.
func redactSQL(q, redacted string) string {
	if !hasSecretKeyword(q) {
		return q
	}
	var out strings.Builder
	rest := q
	for {
		k := keywordEnd(rest)
		if k < 0 {
			break
		}
		open := strings.IndexAny(rest[k:], `'"`)
		if open < 0 {
			break
		}
		open += k
		quote := rest[open]
		end := strings.IndexByte(rest[open+1:], quote)
		if end < 0 {
			end = len(rest) - open - 1
		}
		out.WriteString(rest[:open+1])
		out.WriteString(redacted)
		rest = rest[open+1+end:]
	}
	out.WriteString(rest)
	return out.String()
}

// keywordEnd returns the offset after the first IDENTIFIED or PASSWORD in
// s (any case), or -1.
func keywordEnd(s string) int {
	best := -1
	for _, kw := range []string{"IDENTIFIED", "PASSWORD"} {
		if i := indexFold(s, kw); i >= 0 && (best < 0 || i+len(kw) < best) {
			best = i + len(kw)
		}
	}
	return best
}

// hasSecretKeyword reports, in one pass, whether q holds IDENTIFIED or
// PASSWORD in any case.
func hasSecretKeyword(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] | 0x20 {
		case 'i':
			if hasFoldAt(q, i, "IDENTIFIED") {
				return true
			}
		case 'p':
			if hasFoldAt(q, i, "PASSWORD") {
				return true
			}
		}
	}
	return false
}

// hasFoldAt reports whether s holds upper (ASCII upper case) at i, in any
// case.
func hasFoldAt(s string, i int, upper string) bool {
	if len(s)-i < len(upper) {
		return false
	}
	for j := 0; j < len(upper); j++ {
		c := s[i+j]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[j] {
			return false
		}
	}
	return true
}

// indexFold finds upper (ASCII upper case) in s ignoring ASCII case.
func indexFold(s, upper string) int {
	for i := 0; i+len(upper) <= len(s); i++ {
		if hasFoldAt(s, i, upper) {
			return i
		}
	}
	return -1
}
