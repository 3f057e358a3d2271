package postgres

import (
	"strconv"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse = "no response"
	errGap        = "capture gap"
	errQueue      = "too many pending messages"
)

// Bounds on the state of one connection.
const (
	maxPending     = 4096    // client messages waiting for their responses
	maxStatements  = 1024    // prepared statements and portals remembered
	maxStmtBytes   = 2 << 20 // SQL they hold
	maxStatements1 = 64      // statements of one simple Query given entries of their own
)

// unitKind is what a client message waits for.
type unitKind uint8

const (
	uStartup  unitKind = iota // StartupMessage: authentication, then ReadyForQuery or an error
	uSSL                      // SSLRequest or GSSENCRequest: one byte
	uQuery                    // simple Query: statements, then ReadyForQuery
	uParse                    // ParseComplete
	uBind                     // BindComplete
	uDescribe                 // ParameterDescription?, then RowDescription or NoData
	uExecute                  // DataRows, then CommandComplete, EmptyQuery or PortalSuspended
	uClose                    // CloseComplete
	uSync                     // ReadyForQuery
	uFunction                 // FunctionCallResponse, then ReadyForQuery
)

// unit is one client message waiting for its responses.
type unit struct {
	kind   unitKind
	start  time.Time
	size   int64 // request bytes
	resp   int64 // response bytes so far
	sql    string
	stmt   string
	params int
	stmts  []string     // a simple Query's statements
	next   int          // the statement the next completion is for
	rows   int64        // DataRows of the statement in progress
	entry  *entry.Entry // uStartup, uSSL, uFunction: the entry being built
}

// stmt is a prepared statement, or a portal bound to one.
type stmt struct {
	sql    string
	name   string // the statement's name (for a portal)
	params int
}

// parser is the StreamParser of one PostgreSQL connection.
type parser struct {
	conn *dissect.Conn
	emit dissect.Emitter
	tmpl entry.Entry
	user string
	db   string
	app  string

	cli, srv msgReader
	started  bool // the first client bytes were seen
	queue    []*unit
	head     int
	skipping bool // an extended-protocol error: the server ignores messages until Sync

	stmts     map[string]stmt
	portals   map[string]stmt
	stmtBytes int

	// The client messages of an extended-protocol batch before its Execute.
	batchStart time.Time
	batchSize  int64
	carry      int64 // response bytes of the batch's Parse, Bind and Describe

	now       time.Time // when the server message being handled ended
	encrypted bool      // TLS or GSS encryption follows: nothing more is readable
	ended     bool
	stats     dissect.ParserStats
}

var (
	_ dissect.StreamParser  = (*parser)(nil)
	_ dissect.StatsReporter = (*parser)(nil)
)

func newParser(c *dissect.Conn, emit dissect.Emitter) *parser {
	if c.Opts == nil {
		cc := *c
		opts := dissect.DefaultOptions()
		cc.Opts = &opts
		c = &cc
	}
	return &parser{
		conn:    c,
		emit:    emit,
		tmpl:    *c.NewEntry(entry.ProtoPostgres, time.Time{}),
		cli:     msgReader{client: true},
		stmts:   make(map[string]stmt),
		portals: make(map[string]stmt),
	}
}

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended || len(data) == 0 {
		return
	}
	if p.encrypted {
		p.stats.Skipped += int64(len(data))
		return
	}
	if dir == dissect.ClientToServer {
		if !p.started {
			// A startup-phase message begins with its length's high byte,
			// 0; a typed message with its type, never 0.
			p.started = true
			p.cli.untyped = data[0] == 0
		}
		if !p.cli.feed(data, ts, p.client, nil) {
			p.lost(&p.cli)
		}
		return
	}
	if !p.srv.feed(data, ts, p.server, p.sslAnswer) {
		p.lost(&p.srv)
	}
}

// lost handles bytes that break framing: what waits can no longer be paired.
func (p *parser) lost(r *msgReader) {
	p.stats.Resyncs++
	r.lose()
	p.flush(errGap)
}

// Gap implements dissect.StreamParser.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	p.stats.Skipped += int64(n)
	if p.encrypted {
		return
	}
	if dir == dissect.ClientToServer {
		p.lost(&p.cli)
	} else {
		p.lost(&p.srv)
	}
}

// End implements dissect.StreamParser.
func (p *parser) End(time.Time) {
	if p.ended {
		return
	}
	p.flush(errNoResponse)
	p.ended = true
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

// flush emits what every waiting message has, with err.
func (p *parser) flush(err string) {
	for p.head < len(p.queue) {
		u := p.pop()
		switch u.kind {
		case uQuery:
			if u.next < max(len(u.stmts), 1) {
				p.statement(u, "", err, nil)
			}
		case uExecute, uStartup, uSSL, uFunction:
			p.statement(u, "", err, nil)
		}
	}
	p.skipping = false
	p.batchSize, p.carry = 0, 0
}

func (p *parser) push(u *unit) {
	if p.skipping && u.kind != uSync {
		return // the server discards it: no response will come
	}
	p.skipping = false
	if len(p.queue)-p.head >= maxPending {
		p.stats.Dropped++
		p.flush(errQueue)
	}
	p.queue = append(p.queue, u)
}

func (p *parser) pop() *unit {
	u := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	return u
}

// client handles one complete client message.
func (p *parser) client(m *message) {
	switch m.typ {
	case 0:
		p.startup(m)
	case 'Q':
		sql, _, whole := cstring(m.payload)
		u := &unit{kind: uQuery, start: m.start, size: int64(m.size), sql: sqlText(sql, whole)}
		u.stmts = splitSQL(u.sql, maxStatements1)
		p.batchSize, p.carry = 0, 0
		p.push(u)
	case 'P':
		p.parse(m)
	case 'B':
		p.bind(m)
	case 'D':
		p.batch(m)
		p.push(&unit{kind: uDescribe, start: m.start})
	case 'E':
		p.execute(m)
	case 'C':
		p.batch(m)
		p.close(m.payload)
		p.push(&unit{kind: uClose, start: m.start})
	case 'S':
		p.batchSize, p.carry = 0, 0
		p.push(&unit{kind: uSync, start: m.start})
	case 'F':
		u := &unit{kind: uFunction, start: m.start, size: int64(m.size)}
		u.entry = p.newEntry("FunctionCall", m.start)
		if oid, ok := u32(m.payload); ok {
			u.entry.Path = "function " + strconv.FormatUint(uint64(oid), 10)
		}
		p.push(u)
	}
	// Flush, Terminate, CopyData/Done/Fail and password messages get no
	// unit of their own: their responses, if any, belong to the one
	// waiting. Passwords are never read.
}

// batch counts a message into the extended-protocol batch its Execute
// will report.
func (p *parser) batch(m *message) {
	if p.batchSize == 0 {
		p.batchStart = m.start
	}
	p.batchSize += int64(m.size)
}

// startup handles an untyped first message.
func (p *parser) startup(m *message) {
	code, ok := u32(m.payload)
	if !ok {
		return
	}
	switch {
	case code == codeSSL || code == codeGSSENC:
		name := "SSLRequest"
		if code == codeGSSENC {
			name = "GSSENCRequest"
		}
		u := &unit{kind: uSSL, start: m.start, size: int64(m.size), entry: p.newEntry(name, m.start)}
		p.push(u)
		p.srv.oneByte = true
		p.cli.untyped = true // a StartupMessage follows a refusal
	case code == codeCancel:
		e := p.newEntry("CancelRequest", m.start)
		e.Size.Request = int64(m.size)
		if pid, ok := u32(m.payload[4:]); ok {
			e.Path = "pid " + strconv.FormatUint(uint64(pid), 10)
		}
		p.send(e)
	case code>>16 == 3:
		p.params(m.payload[4:])
		u := &unit{kind: uStartup, start: m.start, size: int64(m.size), entry: p.newEntry("Startup", m.start)}
		u.entry.Path = p.db
		p.push(u)
	default:
		p.stats.Dropped++
	}
}

// params reads the StartupMessage's parameters. Only user, database and
// application_name are kept: no password travels here, and options may
// hold anything.
func (p *parser) params(b []byte) {
	for len(b) > 0 && b[0] != 0 {
		k, rest, ok := cstring(b)
		if !ok {
			return
		}
		v, rest, _ := cstring(rest)
		switch string(k) {
		case "user":
			p.user = text(v, maxText)
		case "database":
			p.db = text(v, maxText)
		case "application_name":
			p.app = text(v, maxText)
		}
		b = rest
	}
	if p.db == "" {
		p.db = p.user // the server's default
	}
}

// sslAnswer handles the one byte that answers an SSLRequest or
// GSSENCRequest: S or G, and encryption follows; N, and a StartupMessage.
func (p *parser) sslAnswer(b byte, ts time.Time) {
	if p.head == len(p.queue) || p.queue[p.head].kind != uSSL {
		p.stats.Dropped++
		return
	}
	u := p.pop()
	e := u.entry
	e.Size.Response = 1
	e.ElapsedUS = ts.Sub(u.start).Microseconds()
	switch b {
	case 'S', 'G':
		e.Status = "accepted"
		p.encrypted = true
	case 'N':
		e.Status = "refused"
	default:
		e.Status = "invalid"
		e.Error = "unexpected answer " + strconv.Quote(string(b))
	}
	p.send(e)
}

// parse handles Parse: name, query, parameter types.
func (p *parser) parse(m *message) {
	p.batch(m)
	name, rest, _ := cstring(m.payload)
	sql, rest, whole := cstring(rest)
	n, _ := u16(rest)
	s := stmt{sql: sqlText(sql, whole), name: string(name), params: n}
	p.remember(p.stmts, s.name, s)
	p.push(&unit{kind: uParse, start: m.start, sql: s.sql, stmt: s.name, params: n})
}

// bind handles Bind: portal, statement, format codes, parameters.
func (p *parser) bind(m *message) {
	p.batch(m)
	portal, rest, _ := cstring(m.payload)
	name, rest, _ := cstring(rest)
	s := p.stmts[string(name)]
	s.name = string(name)
	if nf, ok := u16(rest); ok && len(rest) >= 2+2*nf {
		if n, ok := u16(rest[2+2*nf:]); ok {
			s.params = n
		}
	}
	p.remember(p.portals, string(portal), s)
	p.push(&unit{kind: uBind, start: m.start, sql: s.sql, stmt: s.name, params: s.params})
}

// execute handles Execute: the statement bound to the portal runs.
func (p *parser) execute(m *message) {
	p.batch(m)
	portal, _, _ := cstring(m.payload)
	s := p.portals[string(portal)]
	u := &unit{kind: uExecute, start: p.batchStart, size: p.batchSize, sql: s.sql, stmt: s.name, params: s.params}
	p.batchSize = 0
	p.push(u)
}

// close handles Close of a statement or portal: it is forgotten.
func (p *parser) close(b []byte) {
	if len(b) < 1 {
		return
	}
	name, _, _ := cstring(b[1:])
	switch b[0] {
	case 'S':
		p.forget(p.stmts, string(name))
	case 'P':
		p.forget(p.portals, string(name))
	}
}

// remember stores a statement or portal within the connection's bounds;
// past them, new names are not remembered and their entries show no SQL.
func (p *parser) remember(m map[string]stmt, name string, s stmt) {
	p.forget(m, name)
	if len(p.stmts)+len(p.portals) >= maxStatements || p.stmtBytes+len(s.sql) > maxStmtBytes {
		p.stats.Dropped++
		return
	}
	m[name] = s
	p.stmtBytes += len(s.sql)
}

func (p *parser) forget(m map[string]stmt, name string) {
	if old, ok := m[name]; ok {
		p.stmtBytes -= len(old.sql)
		delete(m, name)
	}
}

// sqlText is the SQL of a message, marked when it was cut (no NUL was
// kept).
func sqlText(b []byte, whole bool) string {
	if whole {
		return string(b)
	}
	return trimPartial(string(b)) + "…"
}

// server handles one complete server message.
func (p *parser) server(m *message) {
	switch m.typ {
	case 'S', 'K', 'v', 'N':
		return // parameter status, key data, protocol negotiation, notices
	case 'A':
		p.notification(m)
		return
	}
	if p.head == len(p.queue) {
		if m.typ != 'Z' {
			p.stats.Dropped++ // a response to a message the capture missed
		}
		return
	}
	u := p.queue[p.head]
	p.now = m.end
	if m.start.Before(u.start) && !u.start.IsZero() {
		p.stats.Dropped++ // began before the message it would answer
		return
	}
	u.resp += int64(m.size)
	switch u.kind {
	case uStartup:
		p.onStartup(u, m)
	case uQuery:
		p.onQuery(u, m)
	case uExecute:
		p.onExecute(u, m)
	case uFunction:
		p.onFunction(u, m)
	default:
		p.onStep(u, m)
	}
}

func (p *parser) onStartup(u *unit, m *message) {
	e := u.entry
	switch m.typ {
	case 'R':
		if code, ok := u32(m.payload); ok {
			// AuthenticationOk ends every method; alone, it means trust.
			if method := authMethod(code, m.payload[4:]); method != "" && (code != 0 || e.Postgres.Command == "") {
				e.Postgres.Command = method
			}
		}
	case 'E':
		p.pop()
		p.statement(u, "", "", m)
	case 'Z':
		p.pop()
		p.statement(u, "ready", "", nil)
	}
}

// authMethod names an authentication request; "" for the exchanges that
// continue one. The password or SASL messages that answer it are never
// read.
func authMethod(code uint32, rest []byte) string {
	switch code {
	case 0:
		return "trust"
	case 2:
		return "kerberos"
	case 3:
		return "password"
	case 5:
		return "md5"
	case 7:
		return "gss"
	case 9:
		return "sspi"
	case 10:
		if mech, _, ok := cstring(rest); ok && len(mech) > 0 {
			return "sasl " + text(mech, 64)
		}
		return "sasl"
	}
	return ""
}

func (p *parser) onQuery(u *unit, m *message) {
	switch m.typ {
	case 'D':
		u.rows++
	case 'C':
		tag, _, _ := cstring(m.payload)
		p.statement(u, text(tag, maxText), "", nil)
	case 'I':
		p.statement(u, "empty", "", nil)
	case 'E':
		p.statement(u, "", "", m)
	case 'Z':
		p.pop()
	}
}

func (p *parser) onExecute(u *unit, m *message) {
	switch m.typ {
	case 'D':
		u.rows++
	case 'C':
		tag, _, _ := cstring(m.payload)
		p.pop()
		p.statement(u, text(tag, maxText), "", nil)
	case 'I':
		p.pop()
		p.statement(u, "empty", "", nil)
	case 's':
		p.pop()
		p.statement(u, "suspended", "", nil)
	case 'E':
		p.pop()
		p.statement(u, "", "", m)
		p.skipToSync()
	}
}

func (p *parser) onFunction(u *unit, m *message) {
	switch m.typ {
	case 'E':
		code, _, msg := errorFields(m.payload)
		u.entry.Postgres.Error = text(msg, maxText)
		u.entry.Postgres.SQLState = string(code)
	case 'Z':
		p.pop()
		status := "ok"
		if u.entry.Postgres.Error != "" {
			status = "ERROR " + u.entry.Postgres.SQLState
		}
		p.statement(u, status, "", nil)
	}
}

// onStep handles the responses to Parse, Bind, Describe, Close and Sync.
// Their bytes count toward the batch's Execute; an error becomes an entry
// of its own, since no Execute will report it.
func (p *parser) onStep(u *unit, m *message) {
	if m.typ == 'E' {
		p.pop()
		p.statement(u, "", "", m)
		p.skipToSync()
		return
	}
	done := false
	switch u.kind {
	case uParse:
		done = m.typ == '1'
	case uBind:
		done = m.typ == '2'
	case uDescribe:
		done = m.typ == 'T' || m.typ == 'n'
	case uClose:
		done = m.typ == '3'
	case uSync:
		done = m.typ == 'Z'
	}
	if done {
		p.pop()
		if u.kind != uSync {
			p.carry += u.resp
		}
	}
}

// skipToSync drops what waits up to the next Sync: after an error the
// server ignores those messages.
func (p *parser) skipToSync() {
	for p.head < len(p.queue) && p.queue[p.head].kind != uSync {
		p.pop()
	}
	p.skipping = p.head == len(p.queue)
	p.carry = 0
}

// statement emits the entry of a unit: one statement's outcome (tag, or
// the ErrorResponse in em), a startup, or an error of a batch step.
func (p *parser) statement(u *unit, tag, failure string, em *message) {
	e := u.entry
	if e == nil {
		e = p.newEntry(stepName(u.kind), u.start)
	}
	pg := e.Postgres
	sql := u.sql
	if u.kind == uQuery {
		if u.next < len(u.stmts) {
			sql = u.stmts[u.next]
		}
		if u.next == 0 {
			e.Size.Request = u.size // the Query message is counted once
		}
		u.next++
	} else {
		e.Size.Request = u.size
	}
	if sql != "" {
		pg.Query = sql
		e.Path = shortSQL(sql)
		pg.Statement, pg.Params = u.stmt, u.params
	}
	if em != nil {
		code, _, msg := errorFields(em.payload)
		pg.Error, pg.SQLState = text(msg, maxText), string(code)
		tag = "ERROR " + pg.SQLState
	}
	if tag != "" && tag != "ready" && tag != "empty" && tag != "suspended" && em == nil && u.kind != uFunction {
		pg.Command = tag
		if n, ok := tagRows(tag); ok {
			pg.Rows = n
		}
	}
	if pg.Rows == 0 {
		pg.Rows = u.rows
	}
	e.Status = tag
	e.Error = failure
	e.Size.Response = u.resp + p.carry
	if u.kind == uExecute {
		p.carry = 0
	}
	u.resp, u.rows = 0, 0
	if failure == "" {
		e.ElapsedUS = p.now.Sub(e.TS).Microseconds()
	}
	p.send(e)
}

func stepName(k unitKind) string {
	switch k {
	case uQuery:
		return "Query"
	case uParse:
		return "Parse"
	case uBind:
		return "Bind"
	case uDescribe:
		return "Describe"
	case uExecute:
		return "Execute"
	case uClose:
		return "Close"
	case uSync:
		return "Sync"
	}
	return "FunctionCall"
}

// notification emits a NotificationResponse (LISTEN/NOTIFY) as an entry of
// its own: Path is the channel, Query the payload.
func (p *parser) notification(m *message) {
	if len(m.payload) < 4 {
		return
	}
	ch, rest, _ := cstring(m.payload[4:])
	payload, _, _ := cstring(rest)
	e := p.newEntry("Notification", m.start)
	e.Path = text(ch, maxText)
	e.Postgres.Query = text(payload, maxText)
	e.Status = "push"
	e.Size.Response = int64(m.size)
	p.send(e)
}

// newEntry returns an entry of the connection, with the startup's user,
// database and application.
func (p *parser) newEntry(method string, ts time.Time) *entry.Entry {
	e := new(struct {
		e  entry.Entry
		pg entry.Postgres
	})
	e.e = p.tmpl
	e.e.TS = ts.UTC()
	e.e.Method = method
	e.e.Postgres = &e.pg
	e.pg = entry.Postgres{User: p.user, Database: p.db, Application: p.app}
	switch method {
	case "Query":
		e.pg.Protocol = "simple"
	case "Parse", "Bind", "Describe", "Execute", "Close", "Sync":
		e.pg.Protocol = "extended"
	}
	return &e.e
}

func (p *parser) send(e *entry.Entry) {
	p.stats.Entries++
	p.emit.Emit(e)
}
