package amqp

import "strconv"

// args decodes a method's arguments into its entry and reports whether
// its no-wait bit is set. Credentials (connection.start-ok's response,
// secure-ok, update-secret) are never read.
func (p *parser) args(x *exchange, c *cursor) (nowait bool) {
	a := &x.a
	bits := func(n int) {
		for i := range n {
			if c.bit() && i == int(x.m.nowait) {
				nowait = true
			}
		}
	}
	switch x.m.args {
	case argStart:
		c.octet()
		c.octet()
		a.Properties = make(map[string]string)
		c.table(a.Properties, "server.")
		if m := c.longstr(); c.ok {
			a.Properties["mechanisms"] = bounded(m)
		}
	case argStartOk:
		a.Properties = make(map[string]string)
		c.table(a.Properties, "client.")
		if m := c.shortstr(); c.ok {
			a.Properties["mechanism"] = bounded(m)
		}
	case argOpen:
		x.e.Path = p.intern(c.shortstr())
	case argClose:
		a.ReplyCode = int(c.short())
		a.ReplyText = p.intern(c.shortstr())
		if class, id := c.short(), c.short(); c.ok && class != 0 {
			if m, ok := methods[key(class, id)]; ok {
				x.e.Path = m.name // the method that failed
			}
		}
	case argExchangeDeclare:
		c.short()
		a.Exchange = p.intern(c.shortstr())
		x.e.Path = a.Exchange
		if t := c.shortstr(); c.ok {
			a.Properties = map[string]string{"type": bounded(t)}
		}
		bits(5)
	case argExchangeDelete:
		c.short()
		a.Exchange = p.intern(c.shortstr())
		x.e.Path = a.Exchange
		bits(2)
	case argExchangeBind:
		c.short()
		a.Exchange = p.intern(c.shortstr()) // destination
		src := p.intern(c.shortstr())
		a.RoutingKey = p.intern(c.shortstr())
		x.e.Path = src + "/" + a.RoutingKey
		bits(1)
	case argQueueDeclare:
		c.short()
		a.Queue = p.intern(c.shortstr())
		x.e.Path = a.Queue
		bits(5)
	case argQueueDeclareOk:
		a.Queue = p.intern(c.shortstr())
		x.e.Path = a.Queue
		msgs, consumers := c.long(), c.long()
		if c.ok {
			a.Properties = map[string]string{
				"message-count":  strconv.FormatUint(uint64(msgs), 10),
				"consumer-count": strconv.FormatUint(uint64(consumers), 10),
			}
		}
	case argQueueBind, argQueueUnbind:
		c.short()
		a.Queue = p.intern(c.shortstr())
		a.Exchange = p.intern(c.shortstr())
		a.RoutingKey = p.intern(c.shortstr())
		x.e.Path = a.Queue
		if x.m.args == argQueueBind {
			bits(1)
		}
	case argQueuePurge:
		c.short()
		a.Queue = p.intern(c.shortstr())
		x.e.Path = a.Queue
		bits(3)
	case argConsume:
		c.short()
		a.Queue = p.intern(c.shortstr())
		a.ConsumerTag = p.intern(c.shortstr())
		x.e.Path = a.Queue
		bits(4)
	case argConsumerTag:
		a.ConsumerTag = p.intern(c.shortstr())
		bits(1)
	case argPublish:
		c.short()
		a.Exchange = p.intern(c.shortstr())
		a.RoutingKey = p.intern(c.shortstr())
		x.e.Path = a.Exchange + "/" + a.RoutingKey
	case argReturn:
		a.ReplyCode = int(c.short())
		a.ReplyText = p.intern(c.shortstr())
		a.Exchange = p.intern(c.shortstr())
		a.RoutingKey = p.intern(c.shortstr())
		x.e.Path = a.Exchange + "/" + a.RoutingKey
		x.e.Status = strconv.Itoa(a.ReplyCode)
		if name := replyCodeName(a.ReplyCode); name != "" {
			x.e.Status += " " + name
		}
	case argDeliver:
		a.ConsumerTag = p.intern(c.shortstr())
		a.DeliveryTag = c.longlong()
		c.bit()
		a.Exchange = p.intern(c.shortstr())
		a.RoutingKey = p.intern(c.shortstr())
		x.e.Path = a.Exchange + "/" + a.RoutingKey
	case argGet:
		c.short()
		a.Queue = p.intern(c.shortstr())
		x.e.Path = a.Queue
	case argGetOk:
		a.DeliveryTag = c.longlong()
		c.bit()
		a.Exchange = p.intern(c.shortstr())
		a.RoutingKey = p.intern(c.shortstr())
		x.e.Path = a.Exchange + "/" + a.RoutingKey
	case argDeliveryTag:
		a.DeliveryTag = c.longlong()
	case argNowaitOnly:
		bits(1)
	}
	return nowait
}
