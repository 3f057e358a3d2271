package redis

import (
	"bytes"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse = "no response"
	errGap        = "capture gap"
)

// Bounds on the commands waiting for their replies.
const (
	maxPending      = 4096    // pipelined commands held
	maxPendingBytes = 2 << 20 // bytes they hold
)

// cmd is one command waiting for its reply, built in place in the entry it
// becomes.
type cmd struct {
	e         entry.Entry
	r         entry.Redis
	kind      cmdKind
	want      int  // confirmations a (un)subscribe expects
	got       int  // confirmations received
	untilNone bool // an UNSUBSCRIBE with no channel: confirmations until none is left
	noReply   bool // CLIENT REPLY OFF or SKIP: the server will not answer
	cost      int
}

// parser is the StreamParser of one Redis connection. Replies are paired
// with commands in order; pushed pub/sub messages become entries of their
// own.
type parser struct {
	conn   *dissect.Conn
	emit   dissect.Emitter
	redact bool
	tmpl   entry.Entry

	cli, srv reader
	queue    []*cmd // oldest first
	head     int    // queue[head:] are waiting
	bytes    int    // held by the queue
	overflow int    // commands past the caps, whose replies are skipped

	resp3      bool
	subscribed bool // a subscribe was sent: RESP2 "message" arrays are pushes
	monitor    bool // MONITOR was answered: the server streams what it runs
	replyOff   bool // CLIENT REPLY OFF
	skipNext   bool // CLIENT REPLY SKIP: the next command gets no reply
	ended      bool
	stats      dissect.ParserStats
	args       [maxKept][]byte // scratch: a command's kept arguments
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
	p := &parser{conn: c, emit: emit, redact: c.Opts.Redact, tmpl: *c.NewEntry(entry.ProtoRedis, time.Time{})}
	p.cli = newReader(true, p.command)
	p.srv = newReader(false, p.reply)
	return p
}

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended {
		return
	}
	if dir == dissect.ClientToServer {
		p.cli.feed(data, ts)
	} else {
		p.srv.feed(data, ts)
	}
	p.stats.Resyncs += p.cli.errors + p.srv.errors
	p.cli.errors, p.srv.errors = 0, 0
}

// Gap implements dissect.StreamParser. Replies can no longer be paired
// with the commands already seen, so those are emitted with Error "capture
// gap"; pairing resumes with the next command, and replies that ended
// before it began are dropped (see reply).
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	p.stats.Resyncs++
	p.stats.Skipped += int64(n)
	if dir == dissect.ClientToServer {
		p.cli.gap()
	} else {
		p.srv.gap()
	}
	p.flush(errGap)
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

// flush emits every waiting command with err.
func (p *parser) flush(err string) {
	for p.head < len(p.queue) {
		c := p.pop()
		if c.got == 0 && !c.noReply {
			c.e.Error = err // an UNSUBSCRIBE that had confirmations is complete
		}
		p.send(c)
	}
	p.overflow = 0 // counted as dropped when they came
}

func (p *parser) pop() *cmd {
	c := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	p.bytes -= c.cost
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	return c
}

func (p *parser) send(c *cmd) {
	p.stats.Entries++
	p.emit.Emit(&c.e)
}

// command handles one complete command from the client.
func (p *parser) command(v *value, end time.Time) {
	n := min(len(v.elems), maxKept)
	for i := 0; i < n; i++ {
		p.args[i] = v.text(i)
	}
	args := p.args[:n]
	if n == 0 || v.null || !v.aggregate() {
		p.stats.Dropped++ // not a command: a client sends arrays of bulk strings
		return
	}
	c := p.newCmd(v, args)
	wasOff, skip := p.replyOff, p.skipNext
	p.skipNext = false
	c.noReply = p.clientReply(c.r.Command, args) || skip || (wasOff && p.replyOff)
	if c.kind == subscribe || c.kind == unsubscribe {
		p.subscribed = true
	}
	if len(p.queue)-p.head >= maxPending || p.bytes+c.cost > maxPendingBytes || p.overflow > 0 {
		p.overflow++
		p.stats.Dropped++
		return
	}
	p.queue = append(p.queue, c)
	p.bytes += c.cost
	p.drain()
}

// drain emits, in order, the commands at the head of the queue that get
// no reply.
func (p *parser) drain() {
	for p.head < len(p.queue) && p.queue[p.head].noReply {
		c := p.pop()
		c.e.Status = "noreply"
		p.send(c)
	}
}

// clientReply follows CLIENT REPLY ON|OFF|SKIP, after which the server
// answers no command, or not the next one. It reports whether the command
// itself goes unanswered (OFF and SKIP are).
func (p *parser) clientReply(name string, args [][]byte) bool {
	if name != "CLIENT REPLY" || len(args) < 3 {
		return false
	}
	switch strings.ToUpper(string(args[2])) {
	case "ON":
		p.replyOff = false
	case "OFF":
		p.replyOff = true
		return true
	case "SKIP":
		p.skipNext = true
		return true
	}
	return false
}

// newCmd builds the entry of a command from its kept arguments.
func (p *parser) newCmd(v *value, args [][]byte) *cmd {
	c := &cmd{e: p.tmpl}
	c.e.TS = v.start.UTC()
	c.e.Size.Request = v.size
	c.e.Redis = &c.r
	ci, known := lookup(args[0])
	name := ci.name
	if !known {
		name = strings.ToUpper(string(args[0]))
	}
	if ci.kind == container && len(args) > 1 {
		name += " " + strings.ToUpper(string(args[1]))
	}
	c.r.Command, c.e.Method, c.kind = name, name, ci.kind
	c.r.Args = make([]string, len(args)-1)
	for i := 1; i < len(args); i++ {
		c.r.Args[i-1] = argText(args[i], v.elems[i].full)
	}
	if p.redact {
		redactions(name, args, func(i int) {
			if i >= 1 && i < len(args) {
				c.r.Args[i-1] = entry.Redacted
			}
		})
	}
	if k := keyIndex(ci, args, v.count); k > 0 {
		c.e.Path = c.r.Args[k-1]
	} else if ci.kind == container && len(args) > 2 {
		c.e.Path = c.r.Args[1]
	}
	switch c.kind {
	case subscribe:
		c.want = max(int(v.count)-1, 1)
	case unsubscribe:
		c.want = int(v.count) - 1
		c.untilNone = c.want <= 0
	}
	c.cost = 256 + len(name) + len(c.r.Args)*16
	for _, a := range c.r.Args {
		c.cost += len(a)
	}
	return c
}

// argText is an argument as text, marked when it was cut.
func argText(b []byte, full int64) string {
	if int64(len(b)) < full {
		return string(b) + "…"
	}
	return string(b)
}

// reply handles one complete value from the server.
func (p *parser) reply(v *value, end time.Time) {
	if resp3Only(v.kind) {
		p.resp3 = true
	}
	var kind string // only pushes and pub/sub replies need their first word
	if v.kind == tPush || v.kind == tArray && p.subscribed {
		kind = v.firstWord()
	}
	if p.isPush(v, kind) {
		p.push(v, kind, end)
		return
	}
	for {
		if p.head == len(p.queue) {
			p.unasked(v, end)
			return
		}
		c := p.queue[p.head]
		// A reply that ended before the waiting command began answers a
		// command the capture missed (a gap, or a capture started
		// mid-connection).
		if end.Before(c.e.TS) {
			p.stats.Dropped++
			return
		}
		if c.untilNone && c.got > 0 && !c.confirms(kind) {
			// An UNSUBSCRIBE with no channel ends at the first reply that is
			// not one of its confirmations; that reply is the next command's.
			p.pop()
			p.send(c)
			p.drain()
			continue
		}
		c.e.Size.Response += v.size
		p.finish(c, v, end)
		if c.confirmed(v) {
			p.pop()
			p.send(c)
			p.drain()
		}
		return
	}
}

// unasked handles a reply while no command waits: it answers a command
// past the queue's caps, or MONITOR streams it, or it is dropped.
func (p *parser) unasked(v *value, end time.Time) {
	switch {
	case p.overflow > 0:
		p.overflow--
		p.stats.Dropped++
	case p.monitor && v.kind == tSimple:
		p.push(v, "monitor", end)
	default:
		p.stats.Dropped++
	}
}

// confirms reports whether a reply of this kind confirms the command.
func (c *cmd) confirms(kind string) bool {
	switch c.kind {
	case subscribe:
		return kind == "subscribe" || kind == "psubscribe" || kind == "ssubscribe"
	case unsubscribe:
		return kind == "unsubscribe" || kind == "punsubscribe" || kind == "sunsubscribe"
	}
	return false
}

// confirmed counts a reply to a (un)subscribe and reports whether the
// command is complete; other commands complete with their one reply.
func (c *cmd) confirmed(v *value) bool {
	if c.kind != subscribe && c.kind != unsubscribe || v.kind == tError || v.kind == tBlobError {
		return true
	}
	c.got++
	if c.untilNone {
		// [unsubscribe, channel, remaining]: done when none remain.
		return len(v.elems) < 3 || string(v.text(2)) == "0"
	}
	return c.got >= c.want
}

// finish fills the reply side of a command's entry.
func (p *parser) finish(c *cmd, v *value, end time.Time) {
	c.e.ElapsedUS = end.Sub(c.e.TS).Microseconds()
	c.r.Type = typeName(v.kind)
	c.r.Reply = render(v)
	c.e.Status = status(v)
	if p.resp3 {
		c.r.Protocol = 3
	} else {
		c.r.Protocol = 2
	}
	isErr := v.kind == tError || v.kind == tBlobError
	switch {
	case c.r.Command == "HELLO" && !isErr && len(c.r.Args) > 0:
		p.resp3 = c.r.Args[0] == "3"
		if p.resp3 {
			c.r.Protocol = 3
		}
	case c.r.Command == "MONITOR" && !isErr:
		p.monitor = true
	case c.kind == unsubscribe && len(v.elems) >= 3 && string(v.text(2)) == "0":
		p.subscribed = false
	}
}

// isPush reports whether a server value is out of band: a RESP3 push other
// than a (un)subscribe confirmation that a waiting command expects, or a
// RESP2 pub/sub message on a subscribed connection.
func (p *parser) isPush(v *value, kind string) bool {
	switch {
	case v.kind == tPush:
		return !p.expectsConfirmation(kind)
	case v.kind == tArray && p.subscribed:
		return kind == "message" || kind == "pmessage" || kind == "smessage"
	}
	return false
}

func (p *parser) expectsConfirmation(kind string) bool {
	return p.head < len(p.queue) && p.queue[p.head].confirms(kind)
}

// push emits an out-of-band message as an entry of its own: Method is its
// kind (message, pmessage, smessage, invalidate, monitor), Path the channel.
func (p *parser) push(v *value, kind string, end time.Time) {
	c := &cmd{e: p.tmpl}
	c.e.TS = end.UTC()
	c.e.Redis = &c.r
	c.e.Size.Response = v.size
	c.e.Method, c.r.Command, c.e.Status = kind, kind, "push"
	c.r.Type = typeName(v.kind)
	c.r.Protocol = 2
	if p.resp3 || v.kind == tPush {
		c.r.Protocol = 3
	}
	switch {
	case kind == "monitor":
		c.r.Reply = render(v)
	case kind == "pmessage" && len(v.elems) >= 4: // pattern, channel, payload
		c.r.Args = []string{elemText(v, 1)}
		c.r.Channel = elemText(v, 2)
		c.r.Reply = elemText(v, 3)
	case (kind == "message" || kind == "smessage") && len(v.elems) >= 3:
		c.r.Channel = elemText(v, 1)
		c.r.Reply = elemText(v, 2)
	default:
		c.r.Reply = render(v)
	}
	c.e.Path = c.r.Channel
	p.send(c)
}

func elemText(v *value, i int) string { return argText(v.text(i), v.elems[i].full) }

// firstWord is the first element of an aggregate, when it is a short
// string: the kind of a push or of a pub/sub reply.
func (v *value) firstWord() string {
	if !v.aggregate() || len(v.elems) == 0 || v.elems[0].count || v.elems[0].n > 16 {
		return ""
	}
	switch w := v.text(0); string(w) { // no allocation for these comparisons
	case "message", "pmessage", "smessage", "subscribe", "psubscribe", "ssubscribe",
		"unsubscribe", "punsubscribe", "sunsubscribe", "invalidate", "pong":
		return string(w)
	default:
		if bytes.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) < 0 && len(w) > 0 {
			return string(w)
		}
	}
	return ""
}

func resp3Only(t byte) bool {
	switch t {
	case tNull, tDouble, tBool, tBlobError, tVerbatim, tBigNum, tMap, tSet, tPush:
		return true
	}
	return false
}
