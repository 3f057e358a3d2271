package amqp

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse = "no response"
	errGap        = "capture gap"
	errIncomplete = "incomplete content"
	errUnknown    = "unknown method"
)

// Bounds on what one connection holds.
const (
	maxChannels = 2048 // channels with a pending request or content, per direction
	maxWaiting  = 16   // synchronous requests waiting on one channel
)

// exchange is one method (with its content, and for a synchronous method
// its reply), built in place in the entry it becomes: one allocation
// holds the entry and its AMQP object and body.
type exchange struct {
	e     entry.Entry
	a     entry.AMQP
	b     entry.Body
	m     method
	class uint16
	id    uint16
	body  []byte
	ct    content
}

// content is the content header and body frames a method awaits.
type content struct {
	x      *exchange
	header bool
	size   int64 // body size the header announced
	got    int64
}

// parser is the StreamParser of one AMQP 0-9-1 connection.
type parser struct {
	conn    *dissect.Conn
	emit    dissect.Emitter
	tmpl    entry.Entry
	maxBody int

	rd      [2]frameReader
	onFrame [2]func(*frame)           // per direction, made once
	waiting [2]map[uint16][]*exchange // synchronous requests each side sent, by channel
	content [2]map[uint16]*content    // content each side is sending, by channel
	ended   bool
	stats   dissect.ParserStats

	recent     [8]string // recently seen short strings, see intern
	nextRecent int
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
	p := &parser{conn: c, emit: emit, tmpl: *c.NewEntry(entry.ProtoAMQP, time.Time{}), maxBody: max(c.Opts.MaxBody, 0)}
	for d := range 2 {
		p.onFrame[d] = func(f *frame) { p.frame(dissect.Dir(d), f) }
		p.rd[d].keepBody = p.maxBody
		p.waiting[d] = make(map[uint16][]*exchange)
		p.content[d] = make(map[uint16]*content)
	}
	return p
}

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended || len(data) == 0 {
		return
	}
	d := dir & 1
	if !p.rd[d].feed(data, ts, p.onFrame[d], nil) {
		p.lost(d)
	}
}

// Gap implements dissect.StreamParser.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	p.stats.Skipped += int64(n)
	p.lost(dir & 1)
}

// lost handles bytes of d that are missing or break framing: the content d
// was sending and the replies d owed are lost.
func (p *parser) lost(d dissect.Dir) {
	p.stats.Resyncs++
	p.rd[d].lose()
	for ch, c := range p.content[d] {
		delete(p.content[d], ch)
		p.fail(c.x, errGap)
	}
	p.failWaiting(d.Reverse(), errGap)
}

// End implements dissect.StreamParser.
func (p *parser) End(time.Time) {
	if p.ended {
		return
	}
	for d := range p.content {
		for ch, c := range p.content[d] {
			delete(p.content[d], ch)
			p.fail(c.x, errIncomplete)
		}
	}
	p.failWaiting(dissect.ClientToServer, errNoResponse)
	p.failWaiting(dissect.ServerToClient, errNoResponse)
	p.ended = true
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

// failWaiting emits every request d is waiting on, with err.
func (p *parser) failWaiting(d dissect.Dir, err string) {
	for ch, xs := range p.waiting[d] {
		delete(p.waiting[d], ch)
		for _, x := range xs {
			p.fail(x, err)
		}
	}
}

func (p *parser) fail(x *exchange, err string) {
	if x.e.Error == "" {
		x.e.Error = err
	}
	p.send(x)
}

func (p *parser) send(x *exchange) {
	if x.a.Body != nil {
		fillBody(x.a.Body, x.body)
	}
	p.stats.Entries++
	p.emit.Emit(&x.e)
}

// account adds a frame's wire bytes to an exchange, by direction.
func account(x *exchange, d dissect.Dir, f *frame) {
	n := int64(8 + f.size)
	if d == dissect.ClientToServer {
		x.e.Size.Request += n
	} else {
		x.e.Size.Response += n
	}
	if ms := f.end.Sub(x.e.TS).Microseconds(); ms > x.e.ElapsedUS {
		x.e.ElapsedUS = ms
	}
}

// frame handles one complete frame sent by d.
func (p *parser) frame(d dissect.Dir, f *frame) {
	switch f.typ {
	case frameMethod:
		p.method(d, f)
	case frameHeader:
		p.header(d, f)
	case frameBody:
		p.body(d, f)
	}
}

func (p *parser) method(d dissect.Dir, f *frame) {
	c := newCursor(f.payload)
	class, id := c.short(), c.short()
	if !c.ok {
		p.stats.Dropped++
		return
	}
	if prev := p.content[d][f.channel]; prev != nil {
		// A method interrupts content: what was announced never came.
		delete(p.content[d], f.channel)
		p.fail(prev.x, errIncomplete)
	}
	m, known := methods[key(class, id)]
	x := p.newExchange(f, class, id, m, known)
	account(x, d, f)
	if !known {
		p.fail(x, errUnknown)
		return
	}
	nowait := p.args(x, &c)
	switch {
	case class == classConnection && id == 50, class == classChannel && id == 40:
		p.closing(d, x)
	case isReply[key(class, id)]:
		p.reply(d, f, x)
	case m.content:
		p.startContent(d, f.channel, x)
	case m.reply != 0 && !nowait:
		p.wait(d, f.channel, x)
	default:
		p.send(x)
	}
}

func (p *parser) newExchange(f *frame, class, id uint16, m method, known bool) *exchange {
	x := &exchange{e: p.tmpl, m: m, class: class, id: id}
	x.e.TS = f.start.UTC()
	x.e.AMQP = &x.a
	x.a.Channel = f.channel
	if known {
		x.a.Method = m.name
	} else {
		x.a.Method = strconv.Itoa(int(class)) + "." + strconv.Itoa(int(id))
	}
	x.e.Method = x.a.Method
	return x
}

// isReply marks the methods that answer a synchronous one.
var isReply = func() map[uint32]bool {
	r := make(map[uint32]bool)
	for k, m := range methods {
		class := uint16(k >> 16)
		if m.reply != 0 {
			r[key(class, m.reply)] = true
		}
		if m.reply2 != 0 {
			r[key(class, m.reply2)] = true
		}
	}
	return r
}()

// wait holds a synchronous request of d until the other side answers.
func (p *parser) wait(d dissect.Dir, ch uint16, x *exchange) {
	w := p.waiting[d]
	xs, ok := w[ch]
	if !ok && len(w) >= maxChannels || len(xs) >= maxWaiting {
		p.stats.Dropped++
		p.fail(x, errNoResponse)
		return
	}
	w[ch] = append(xs, x)
}

// reply pairs a reply sent by d with the request the other side waits on.
func (p *parser) reply(d dissect.Dir, f *frame, r *exchange) {
	req := p.take(d.Reverse(), f.channel, r)
	if req == nil {
		p.stats.Dropped++ // a reply to a request the capture missed
		return
	}
	account(req, d, f)
	req.a.Reply = r.a.Method
	req.e.Status = r.a.Method
	merge(&req.a, &r.a)
	if req.e.Path == "" {
		req.e.Path = r.e.Path
	}
	if r.m.content {
		p.startContent(d, f.channel, req)
		return
	}
	p.send(req)
}

// take removes and returns the request of d on ch that reply r answers;
// older requests it skips were never answered.
func (p *parser) take(d dissect.Dir, ch uint16, r *exchange) *exchange {
	xs := p.waiting[d][ch]
	for i, x := range xs {
		if x.class != r.class || (x.m.reply != r.id && x.m.reply2 != r.id) {
			continue
		}
		for _, old := range xs[:i] {
			p.fail(old, errNoResponse)
		}
		if rest := xs[i+1:]; len(rest) > 0 {
			p.waiting[d][ch] = rest
		} else {
			delete(p.waiting[d], ch)
		}
		return x
	}
	return nil
}

// merge copies what a reply adds to its request: a server-named queue or
// consumer tag, a delivery, a message count.
func merge(req, r *entry.AMQP) {
	if req.Queue == "" {
		req.Queue = r.Queue
	}
	if req.ConsumerTag == "" {
		req.ConsumerTag = r.ConsumerTag
	}
	if req.Exchange == "" {
		req.Exchange = r.Exchange
	}
	if req.RoutingKey == "" {
		req.RoutingKey = r.RoutingKey
	}
	if req.DeliveryTag == 0 {
		req.DeliveryTag = r.DeliveryTag
	}
	for k, v := range r.Properties {
		if req.Properties == nil {
			req.Properties = make(map[string]string, len(r.Properties))
		}
		if len(req.Properties) < maxProps {
			req.Properties[k] = v
		}
	}
}

// closing handles connection.close and channel.close sent by d: the
// requests the other side waits on (on that channel, or on any for the
// connection) are answered by it, and it waits for its own close-ok.
func (p *parser) closing(d dissect.Dir, x *exchange) {
	code := x.a.ReplyCode
	status := strconv.Itoa(code)
	if name := replyCodeName(code); name != "" {
		status += " " + name
	}
	answer := func(req *exchange) {
		req.a.Reply = x.a.Method
		req.a.ReplyCode, req.a.ReplyText = x.a.ReplyCode, x.a.ReplyText
		req.e.Status = status
		p.send(req)
	}
	other := p.waiting[d.Reverse()]
	for ch, xs := range other {
		if x.class == classChannel && ch != x.a.Channel {
			continue
		}
		delete(other, ch)
		for _, req := range xs {
			answer(req)
		}
	}
	p.wait(d, x.a.Channel, x)
}

// startContent makes x receive the content header and body frames d sends
// next on ch.
func (p *parser) startContent(d dissect.Dir, ch uint16, x *exchange) {
	cs := p.content[d]
	if len(cs) >= maxChannels {
		p.stats.Dropped++
		p.fail(x, errIncomplete)
		return
	}
	x.ct = content{x: x}
	cs[ch] = &x.ct
}

// header handles a content header frame: body size and properties.
func (p *parser) header(d dissect.Dir, f *frame) {
	ct := p.content[d][f.channel]
	if ct == nil || ct.header {
		p.stats.Dropped++ // content whose method the capture missed
		return
	}
	x := ct.x
	account(x, d, f)
	c := newCursor(f.payload)
	c.short() // class
	c.short() // weight
	size := c.longlong()
	ct.header, ct.size = true, int64(min(size, 1<<62))
	x.b = entry.Body{Size: ct.size}
	x.a.Body = &x.b
	p.properties(&c, &x.a)
	if ct.size == 0 {
		p.finishContent(d, f.channel)
	}
}

// body handles a body frame: its bytes are kept up to the body limit.
func (p *parser) body(d dissect.Dir, f *frame) {
	ct := p.content[d][f.channel]
	if ct == nil || !ct.header {
		p.stats.Dropped++
		return
	}
	x := ct.x
	account(x, d, f)
	if room := p.maxBody - len(x.body); room > 0 {
		if x.body == nil {
			x.body = make([]byte, 0, min(int64(p.maxBody), ct.size))
		}
		x.body = append(x.body, f.payload[:min(room, len(f.payload))]...)
	}
	ct.got += int64(f.size)
	if ct.got >= ct.size {
		p.finishContent(d, f.channel)
	}
}

func (p *parser) finishContent(d dissect.Dir, ch uint16) {
	x := p.content[d][ch].x
	delete(p.content[d], ch)
	p.send(x)
}

// fillBody sets a body's data from the bytes kept: text when UTF-8, else
// base64.
func fillBody(b *entry.Body, data []byte) {
	b.Truncated = int64(len(data)) < b.Size
	if len(data) == 0 {
		return
	}
	if utf8.Valid(data) {
		b.Data = string(data)
		return
	}
	b.Encoding = "base64"
	b.Data = base64.StdEncoding.EncodeToString(data)
}

// basicProps are the basic class's content properties in flag order
// (bit 15 first); kind s is a short string, o an octet, t a timestamp, h
// the headers table.
var basicProps = [...]struct {
	name string
	kind byte
}{
	{"content-type", 's'}, {"content-encoding", 's'}, {"headers", 'h'}, {"delivery-mode", 'o'},
	{"priority", 'o'}, {"correlation-id", 's'}, {"reply-to", 's'}, {"expiration", 's'},
	{"message-id", 's'}, {"timestamp", 't'}, {"type", 's'}, {"user-id", 's'}, {"app-id", 's'},
}

// properties reads the basic class's content properties into a.
func (p *parser) properties(c *cursor, a *entry.AMQP) {
	var flags [4]uint16
	for i := range flags {
		flags[i] = c.short()
		if !c.ok {
			return
		}
		if flags[i]&1 == 0 {
			break // no more flag words
		}
	}
	if flags[0]&^1 == 0 {
		return
	}
	props := make(map[string]string, 4)
	for i, bp := range basicProps {
		if flags[0]&(1<<(15-i)) == 0 {
			continue
		}
		switch bp.kind {
		case 's':
			if v := c.shortstr(); c.ok {
				props[bp.name] = p.intern(v)
			}
		case 'o':
			props[bp.name] = smallInt(int(c.octet()))
		case 't':
			props[bp.name] = time.Unix(int64(c.longlong()), 0).UTC().Format(time.RFC3339)
		case 'h':
			c.table(props, "headers.")
		}
		if !c.ok {
			break
		}
	}
	if len(props) > 0 {
		a.Properties = props
	}
}

// smallInt formats an octet without allocating for the common values.
func smallInt(n int) string {
	if n < len(smallInts) {
		return smallInts[n]
	}
	return strconv.Itoa(n)
}

var smallInts = [...]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}

// intern returns b as a string, reusing the string of a recent equal value:
// a connection repeats its exchanges, routing keys and content types.
func (p *parser) intern(b []byte) string {
	if len(b) > 64 {
		return bounded(b)
	}
	for _, s := range p.recent {
		if s == string(b) { // no allocation for the comparison
			return s
		}
	}
	s := string(b)
	p.recent[p.nextRecent%len(p.recent)] = s
	p.nextRecent++
	return s
}
