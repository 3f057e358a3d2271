package mysql

import (
	"strconv"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// phase is where the connection is.
type phase uint8

const (
	phaseStart   phase = iota // nothing seen yet
	phaseLogin                // greeting seen: the client's login comes next
	phaseAuth                 // login sent: authentication until OK or ERR
	phaseCommand              // commands and their responses
	phaseOff                  // compressed protocol: no longer parsed
)

// tri is a fact that may not be known (the handshake was not captured).
type tri uint8

const (
	unknown tri = iota
	no
	yes
)

// parser is the StreamParser of one MySQL connection.
type parser struct {
	conn   *dissect.Conn
	emit   dissect.Emitter
	tmpl   entry.Entry
	redact bool

	cli, srv   half
	phase      phase
	deprecate  tri    // CLIENT_DEPRECATE_EOF: no EOF packets around rows
	clientCaps uint32 // from the login packet
	serverCaps uint32 // from the greeting
	database   string // current schema, from the login and COM_INIT_DB

	hs    *exchange // the connection phase, until it ends
	cur   *exchange // the command waiting for (the rest of) its response
	stmts map[uint32]string
	tls   dissect.StreamParser // takes over after an SSLRequest
	ended bool
	stats dissect.ParserStats
}

var (
	_ dissect.StreamParser  = (*parser)(nil)
	_ dissect.StatsReporter = (*parser)(nil)
)

// off says the bytes no longer go through MySQL framing.
func (p *parser) off() bool { return p.tls != nil || p.phase == phaseOff }

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended || len(data) == 0 {
		return
	}
	if p.tls == nil && p.phase != phaseOff {
		h := p.half(dir)
		if !h.synced {
			if data = p.probe(h, data); data == nil {
				return
			}
		}
		data = h.feed(p, data, ts)
	}
	switch {
	case len(data) == 0:
	case p.tls != nil:
		p.tls.Data(dir, data, ts)
	default:
		p.stats.Skipped += int64(len(data))
	}
}

// Gap implements dissect.StreamParser: the exchange in progress ends with
// an error, and the direction looks for a packet start again.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	if p.tls != nil {
		p.tls.Gap(dir, n)
		return
	}
	p.stats.Skipped += int64(n)
	p.stats.Resyncs++
	p.half(dir).lost()
	if p.hs != nil {
		p.finish(p.hs, errGap)
		p.hs = nil
		p.phase = phaseCommand
	}
	if p.cur != nil {
		p.finish(p.cur, errGap)
		p.cur = nil
	}
}

// End implements dissect.StreamParser.
func (p *parser) End(ts time.Time) {
	if p.ended {
		return
	}
	if p.hs != nil {
		p.finish(p.hs, errNoResponse)
		p.hs = nil
	}
	if p.cur != nil {
		p.abandon(p.cur)
		p.cur = nil
	}
	p.ended = true
	if p.tls != nil {
		p.tls.End(ts)
	}
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

func (p *parser) half(dir dissect.Dir) *half {
	if dir == dissect.ClientToServer {
		return &p.cli
	}
	return &p.srv
}

// maxProbe bounds the bytes held while deciding where packets start.
const maxProbe = 64

// probe collects the first bytes of a direction without framing (the
// start of the capture, or after a gap) until resync can judge them. It
// returns the bytes to frame once they start a packet, or nil.
func (p *parser) probe(h *half, data []byte) []byte {
	buf := data
	if len(h.probe) > 0 {
		buf = append(h.probe, data...)
	}
	need := headerLen + 1
	if h.dir == dissect.ClientToServer && p.phase <= phaseLogin && len(buf) >= headerLen && buf[3] == 1 {
		need = headerLen + 32 // a login packet
	}
	if len(buf) < need {
		h.probe = append(h.probe[:0], buf...)
		return nil
	}
	h.probe = h.probe[:0]
	if !p.resync(h, buf) {
		p.stats.Skipped += int64(len(buf))
		return nil
	}
	h.synced = true
	return buf
}

// resync reports whether data (the start of a Data call on a direction
// without framing) starts a packet the parser can follow.
func (p *parser) resync(h *half, data []byte) bool {
	if h.dir == dissect.ClientToServer {
		if p.phase <= phaseLogin && looksLikePacket(data, 1, func(byte, int) bool { return len(data) >= headerLen+32 }) {
			v, _ := detectLogin(0, data[headerLen:])
			return v == dissect.Yes
		}
		return looksLikePacket(data, 0, func(c byte, n int) bool {
			return knownCommand(c) && n <= maxPacket
		})
	}
	if p.phase == phaseStart && looksLikePacket(data, 0, func(c byte, _ int) bool { return c == protocolVersion10 }) {
		return true
	}
	// A response goes on with the sequence ids of its command.
	return p.cur != nil && !p.cur.responded && looksLikePacket(data, p.cur.seq+1, func(byte, int) bool { return true })
}

// exchange is one command (or the connection phase) and its response,
// built in place in the entry it becomes.
type exchange struct {
	e     entry.Entry
	my    entry.MySQL
	cmd   byte
	seq   byte // the sequence id of the command's last packet
	state respState
	left  int // definitions left in the current section
	cols  int // columns of a prepared statement
	sets  int // result sets seen
	// responded says a response packet was seen; tail says the response
	// may be complete (only an optional EOF may follow).
	responded, tail bool
	last            time.Time
}

// respState is what the server sends next for the current command.
type respState uint8

const (
	rsFirst       respState = iota // OK, ERR, a result set, ...
	rsColumns                      // column definitions, left to go
	rsColumnsEOF                   // the EOF after them, or rows when EOF is deprecated
	rsRows                         // rows until EOF or OK
	rsParams                       // prepare: parameter definitions
	rsParamsEOF                    // the EOF after them
	rsPrepColumns                  // prepare: column definitions
	rsPrepColsEOF                  // the EOF after them
	rsFieldList                    // column definitions until EOF
	rsInfile                       // LOAD DATA LOCAL: the client sends the file
	rsAuth                         // COM_CHANGE_USER: authentication exchanges
	rsStream                       // binlog events until EOF
)

func (p *parser) newExchange(ts time.Time) *exchange {
	x := new(exchange)
	t := &p.tmpl
	x.e.V, x.e.Proto, x.e.Src, x.e.Dst, x.e.Source, x.e.FlowID = t.V, t.Proto, t.Src, t.Dst, t.Source, t.FlowID
	x.e.TS = ts.UTC()
	x.e.MySQL = &x.my
	x.last = ts
	return x
}

// finish emits x with err (if none is set yet).
func (p *parser) finish(x *exchange, err string) {
	if x.e.Error == "" {
		x.e.Error = err
	}
	switch {
	case x.my.Error != "" || x.my.Code != 0:
		x.e.Status = "ERR " + strconv.Itoa(x.my.Code)
	case x.e.Status == "" && x.responded:
		x.e.Status = "OK"
	}
	if x.sets > 1 {
		x.my.Results = x.sets
	}
	x.e.ElapsedUS = max(0, x.last.Sub(x.e.TS).Microseconds())
	p.stats.Entries++
	p.emit.Emit(&x.e)
}

// abandon emits a command whose response did not (fully) come.
func (p *parser) abandon(x *exchange) {
	switch {
	case x.tail:
		p.finish(x, "")
	case x.responded:
		p.finish(x, errIncomplete)
	default:
		p.finish(x, errNoResponse)
	}
}

// clientPacket handles a logical packet from the client.
func (p *parser) clientPacket(h *half, ts time.Time) {
	b := h.buf
	switch {
	case p.phase <= phaseLogin && h.seq == 1:
		p.login(h, ts)
	case p.phase == phaseAuth && h.seq != 0:
		if p.hs != nil {
			p.hs.e.Size.Request += h.wire
		}
	case p.cur != nil && p.cur.state == rsInfile:
		p.cur.e.Size.Request += h.wire
		if h.total == 0 { // the end of the file
			p.cur.state = rsFirst
		}
	case p.cur != nil && p.cur.state == rsAuth && h.seq != 0:
		p.cur.e.Size.Request += h.wire
	case h.seq == 0 && len(b) > 0:
		if p.hs != nil { // the end of authentication was not seen
			p.finish(p.hs, errIncomplete)
			p.hs = nil
		}
		p.phase = phaseCommand
		p.command(h, ts)
	default:
		p.stats.Dropped++
	}
}

// serverPacket handles a logical packet from the server.
func (p *parser) serverPacket(h *half, ts time.Time) {
	b := h.buf
	if len(b) == 0 {
		p.stats.Dropped++
		return
	}
	switch {
	case p.phase == phaseStart && h.seq == 0 && (b[0] == protocolVersion10 || b[0] == 0xFF):
		p.greeting(h, ts)
	case p.phase == phaseLogin && b[0] == 0xFF && p.hs != nil:
		// Refused before the login (too many connections, host blocked).
		p.hs.e.Size.Response += h.wire
		p.errPacket(p.hs, b)
		p.hs.responded, p.hs.last = true, ts
		p.finish(p.hs, "")
		p.hs = nil
	case p.phase == phaseAuth:
		p.auth(h, ts)
	case p.cur != nil:
		x := p.cur
		x.e.Size.Response += h.wire
		x.responded, x.last = true, ts
		if p.response(x, b, h.total) {
			p.cur = nil
			p.finish(x, "")
		}
	default:
		p.stats.Dropped++
	}
}
