package mysql

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// command starts the exchange of a command packet.
func (p *parser) command(h *half, ts time.Time) {
	if p.cur != nil {
		p.abandon(p.cur)
		p.cur = nil
	}
	b := h.buf
	x := p.newExchange(h.start)
	x.e.Size.Request = h.wire
	c := b[0]
	x.cmd, x.seq = c, h.last
	x.my.Command = commandName(c)
	x.e.Method = methodName(c)
	args := b[1:]
	switch c {
	case comQuery, comStmtPrepare:
		p.sql(x, h, args)
	case comStmtExecute, comStmtFetch, comStmtClose, comStmtReset, comStmtSendLongData, comStmtBulkExecute:
		p.statement(x, args)
	case comInitDB:
		x.my.Database = string(args)
		x.e.Path = x.my.Database
		p.database = x.my.Database
	case comFieldList, comChangeUser:
		x.e.Path, _ = cstring(args)
		if c == comChangeUser {
			x.my.User = x.e.Path
		}
	}
	if c == comStmtFetch {
		x.state = rsRows
	}
	if noResponse(c) {
		p.finish(x, "")
		return
	}
	p.cur = x
}

// sql fills the SQL text of a query or prepare.
func (p *parser) sql(x *exchange, h *half, args []byte) {
	// With query attributes (MySQL 8), a query starts with the
	// parameter count and set count; only the common "none" is skipped.
	if x.cmd == comQuery && p.clientCaps&capQueryAttributes != 0 && len(args) >= 2 && args[0] == 0 && args[1] == 1 {
		args = args[2:]
	}
	x.my.Truncated = h.total > len(h.buf)
	q := string(args)
	if p.redact {
		q = redactSQL(q, entry.Redacted)
	}
	x.my.Query, x.e.Path = q, q
	if x.cmd == comQuery {
		if v, ok := sqlVerb(args); ok {
			x.e.Method = v
		} else {
			x.e.Method = "QUERY"
		}
	}
}

// statement fills the statement id of a prepared statement command, and
// its SQL text when the prepare was seen.
func (p *parser) statement(x *exchange, args []byte) {
	if len(args) < 4 {
		return
	}
	id := le32(args)
	x.my.Statement = id
	x.my.Query = p.stmts[id]
	x.e.Path = x.my.Query
	if x.cmd == comStmtClose {
		delete(p.stmts, id)
	}
}

// remember keeps a prepared statement's text, within the bound.
func (p *parser) remember(id uint32, q string) {
	if p.stmts == nil {
		p.stmts = make(map[uint32]string)
	}
	if len(p.stmts) >= maxStatements {
		for k := range p.stmts { // drop any one: a client leaking statements
			delete(p.stmts, k)
			break
		}
	}
	p.stmts[id] = q
}

// response handles one response packet of x (b its first bytes, total its
// size); it reports whether the response is complete.
func (p *parser) response(x *exchange, b []byte, total int) bool {
	first := b[0]
	if first == 0xFF && x.state != rsInfile {
		if len(b) >= 3 && le16(b[1:]) == 0xFFFF {
			return false // a MariaDB progress report, not an error
		}
		p.errPacket(x, b)
		return true
	}
	eof := first == 0xFE && total < 9 // an EOF packet, or a short OK
	switch x.state {
	case rsFirst:
		return p.first(x, b, total)
	case rsColumns:
		if x.left--; x.left <= 0 {
			x.state = rsColumnsEOF
		}
	case rsColumnsEOF:
		return p.afterColumns(x, b, total)
	case rsRows, rsStream:
		if first == 0xFE && total < maxPacket {
			return p.terminal(x, b, total)
		}
		x.my.Rows++
	case rsParams:
		if x.left--; x.left <= 0 {
			return p.paramsDone(x)
		}
	case rsParamsEOF:
		if eof {
			return p.prepColumns(x)
		}
		// EOF deprecated: this is the first column definition.
		done := p.prepColumns(x)
		return done || p.response(x, b, total)
	case rsPrepColumns:
		if x.left--; x.left <= 0 {
			if p.deprecate == yes {
				return true
			}
			x.state, x.tail = rsPrepColsEOF, true
		}
	case rsPrepColsEOF:
		return true
	case rsFieldList:
		if eof {
			return true
		}
		x.my.Columns++
	case rsAuth:
		return first == 0x00 // more auth data or a switch go on
	case rsInfile:
		return true
	}
	return false
}

// first handles the first packet of a response (or of the next result
// set after one that said more results exist).
func (p *parser) first(x *exchange, b []byte, total int) bool {
	c := x.cmd
	switch first := b[0]; {
	case c == comStatistics:
		return true // a status string
	case first == 0x00 && c == comStmtPrepare:
		return p.prepared(x, b)
	case first == 0x00, first == 0xFE && total < 9 && c != comChangeUser:
		return p.ok(x, b)
	case first == 0xFB && c == comQuery:
		x.state = rsInfile
	case c == comChangeUser:
		x.state = rsAuth
	case c == comFieldList:
		x.state = rsFieldList
		x.my.Columns++
	case c == comBinlogDump || c == comBinlogDumpGTID:
		x.state = rsStream
		x.my.Rows++
	case hasResultSet(c):
		return p.resultSet(x, b)
	default:
		x.e.Error = errUnknownReply
		return true
	}
	return false
}

// resultSet starts a result set from its column count packet.
func (p *parser) resultSet(x *exchange, b []byte) bool {
	n, k := lenenc(b)
	if k == 0 || n == 0 || n > 1<<16 {
		x.e.Error = errUnknownReply
		return true
	}
	x.sets++
	if x.sets == 1 {
		x.my.Columns = int(n)
	}
	// MariaDB's metadata cache and MySQL's optional metadata add a byte
	// saying whether the definitions follow.
	if len(b) > k && b[k] == 0 {
		x.state = rsColumnsEOF
		return false
	}
	x.state, x.left = rsColumns, int(n)
	return false
}

// afterColumns handles the packet after a result set's column
// definitions: the EOF, or (EOF deprecated) the first row or the end.
func (p *parser) afterColumns(x *exchange, b []byte, total int) bool {
	if b[0] != 0xFE || total >= 9 {
		x.state = rsRows
		x.my.Rows++
		return false
	}
	// An EOF is 5 bytes; an OK ending the rows when EOF is deprecated
	// is at least 7.
	if p.deprecate == yes || p.deprecate == unknown && total >= 7 {
		return p.terminal(x, b, total)
	}
	x.state = rsRows
	if len(b) >= 5 && le16(b[3:])&serverCursorExists != 0 {
		return true // rows come with COM_STMT_FETCH
	}
	return false
}

// terminal handles the EOF or OK that ends a result set's rows.
func (p *parser) terminal(x *exchange, b []byte, total int) bool {
	var status int
	if total < 7 { // an EOF: warnings, status
		if len(b) >= 5 {
			x.my.Warnings += le16(b[1:])
			status = le16(b[3:])
		}
	} else {
		status = p.okFields(x, b)
	}
	return !p.more(x, status)
}

// more says whether another result follows, and readies x for it.
func (p *parser) more(x *exchange, status int) bool {
	if status&serverMoreResults == 0 {
		return false
	}
	x.state = rsFirst
	return true
}

// ok handles an OK packet as a whole response (or one of several).
func (p *parser) ok(x *exchange, b []byte) bool {
	x.sets++
	return !p.more(x, p.okFields(x, b))
}

// okFields reads an OK packet's affected rows, last insert id, status and
// warnings; it returns the status flags.
func (p *parser) okFields(x *exchange, b []byte) int {
	b = b[1:]
	affected, k := lenenc(b)
	if k == 0 {
		return 0
	}
	b = b[k:]
	insertID, k := lenenc(b)
	if k == 0 {
		return 0
	}
	b = b[k:]
	x.my.Affected += int64(affected)
	if insertID != 0 {
		x.my.InsertID = int64(insertID)
	}
	if len(b) < 4 {
		return 0
	}
	x.my.Warnings += le16(b[2:])
	return le16(b)
}

// prepared reads COM_STMT_PREPARE_OK: statement id, columns, parameters,
// then the parameter and column definitions follow.
func (p *parser) prepared(x *exchange, b []byte) bool {
	if len(b) < 12 {
		x.e.Error = errUnknownReply
		return true
	}
	id := le32(b[1:])
	x.my.Statement = id
	x.cols, x.my.Params = le16(b[5:]), le16(b[7:])
	x.my.Columns = x.cols
	x.my.Warnings = le16(b[10:])
	p.remember(id, x.my.Query)
	// MySQL's optional metadata: definitions may not follow.
	if len(b) > 12 && b[12] == 0 {
		return true
	}
	if x.my.Params > 0 {
		x.state, x.left = rsParams, x.my.Params
		return false
	}
	return p.prepColumns(x)
}

// paramsDone ends the parameter definitions: the EOF follows, unless it
// is deprecated.
func (p *parser) paramsDone(x *exchange) bool {
	if p.deprecate == yes {
		return p.prepColumns(x)
	}
	x.state = rsParamsEOF
	x.tail = x.cols == 0 && p.deprecate == unknown
	return false
}

// prepColumns starts the column definitions of a prepare response.
func (p *parser) prepColumns(x *exchange) bool {
	if x.cols == 0 {
		return true
	}
	x.state, x.left, x.tail = rsPrepColumns, x.cols, false
	return false
}

// errPacket reads an ERR packet: code, SQL state (protocol 4.1), message.
func (p *parser) errPacket(x *exchange, b []byte) {
	if len(b) < 3 {
		x.my.Error = "error"
		return
	}
	x.my.Code = le16(b[1:])
	msg := b[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		x.my.SQLState = string(msg[1:6])
		msg = msg[6:]
	}
	x.my.Error = string(msg)
	if x.my.Error == "" {
		x.my.Error = "error " + x.my.SQLState
	}
}
