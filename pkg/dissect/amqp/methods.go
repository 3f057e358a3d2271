package amqp

// sender says which peer sends a method.
type sender uint8

const (
	byClient sender = 1 << iota
	byServer
	byBoth = byClient | byServer
)

// argKind selects how a method's arguments are decoded.
type argKind uint8

const (
	argNone            argKind = iota
	argStart                   // connection.start: version, server-properties, mechanisms, locales
	argStartOk                 // connection.start-ok: client-properties, mechanism, response (never read), locale
	argOpen                    // connection.open: virtual-host
	argClose                   // connection.close, channel.close: reply-code, reply-text, class, method
	argExchangeDeclare         // reserved, exchange, type, bits, arguments
	argExchangeDelete          // reserved, exchange, bits
	argExchangeBind            // reserved, destination, source, routing-key, bits, arguments
	argQueueDeclare            // reserved, queue, bits, arguments
	argQueueDeclareOk          // queue, message-count, consumer-count
	argQueueBind               // reserved, queue, exchange, routing-key, bits, arguments
	argQueuePurge              // reserved, queue, bits (purge, delete)
	argQueueUnbind             // reserved, queue, exchange, routing-key, arguments
	argConsume                 // reserved, queue, consumer-tag, bits, arguments
	argConsumerTag             // consumer-tag (consume-ok, cancel-ok), cancel: consumer-tag, no-wait
	argPublish                 // reserved, exchange, routing-key, bits
	argReturn                  // reply-code, reply-text, exchange, routing-key
	argDeliver                 // consumer-tag, delivery-tag, redelivered, exchange, routing-key
	argGet                     // reserved, queue, no-ack
	argGetOk                   // delivery-tag, redelivered, exchange, routing-key, message-count
	argDeliveryTag             // ack, reject, nack: delivery-tag, bits
	argNowaitOnly              // confirm.select: no-wait
)

// method describes one class.method of AMQP 0-9-1.
type method struct {
	name    string
	from    sender
	reply   uint16 // the method id of the synchronous reply; 0 when asynchronous
	reply2  uint16 // another accepted reply (basic.get-empty)
	content bool   // followed by a content header and body frames
	args    argKind
	nowait  int8 // index of the no-wait bit among the method's bits; -1 when none
}

func key(class, id uint16) uint32 { return uint32(class)<<16 | uint32(id) }

// Class ids.
const (
	classConnection = 10
	classChannel    = 20
	classExchange   = 40
	classQueue      = 50
	classBasic      = 60
	classConfirm    = 85
	classTx         = 90
)

// methods lists every method of AMQP 0-9-1 with RabbitMQ's extensions
// (exchange.bind, basic.nack, confirm.*, connection.blocked,
// update-secret).
var methods = map[uint32]method{
	key(10, 10): {name: "connection.start", from: byServer, reply: 11, args: argStart, nowait: -1},
	key(10, 11): {name: "connection.start-ok", from: byClient, args: argStartOk, nowait: -1},
	key(10, 20): {name: "connection.secure", from: byServer, reply: 21, nowait: -1},
	key(10, 21): {name: "connection.secure-ok", from: byClient, nowait: -1},
	key(10, 30): {name: "connection.tune", from: byServer, reply: 31, nowait: -1},
	key(10, 31): {name: "connection.tune-ok", from: byClient, nowait: -1},
	key(10, 40): {name: "connection.open", from: byClient, reply: 41, args: argOpen, nowait: -1},
	key(10, 41): {name: "connection.open-ok", from: byServer, nowait: -1},
	key(10, 50): {name: "connection.close", from: byBoth, reply: 51, args: argClose, nowait: -1},
	key(10, 51): {name: "connection.close-ok", from: byBoth, nowait: -1},
	key(10, 60): {name: "connection.blocked", from: byServer, nowait: -1},
	key(10, 61): {name: "connection.unblocked", from: byServer, nowait: -1},
	key(10, 70): {name: "connection.update-secret", from: byClient, reply: 71, nowait: -1},
	key(10, 71): {name: "connection.update-secret-ok", from: byServer, nowait: -1},

	key(20, 10): {name: "channel.open", from: byClient, reply: 11, nowait: -1},
	key(20, 11): {name: "channel.open-ok", from: byServer, nowait: -1},
	key(20, 20): {name: "channel.flow", from: byBoth, reply: 21, nowait: -1},
	key(20, 21): {name: "channel.flow-ok", from: byBoth, nowait: -1},
	key(20, 40): {name: "channel.close", from: byBoth, reply: 41, args: argClose, nowait: -1},
	key(20, 41): {name: "channel.close-ok", from: byBoth, nowait: -1},

	key(40, 10): {name: "exchange.declare", from: byClient, reply: 11, args: argExchangeDeclare, nowait: 4},
	key(40, 11): {name: "exchange.declare-ok", from: byServer, nowait: -1},
	key(40, 20): {name: "exchange.delete", from: byClient, reply: 21, args: argExchangeDelete, nowait: 1},
	key(40, 21): {name: "exchange.delete-ok", from: byServer, nowait: -1},
	key(40, 30): {name: "exchange.bind", from: byClient, reply: 31, args: argExchangeBind, nowait: 0},
	key(40, 31): {name: "exchange.bind-ok", from: byServer, nowait: -1},
	key(40, 40): {name: "exchange.unbind", from: byClient, reply: 51, args: argExchangeBind, nowait: 0},
	key(40, 51): {name: "exchange.unbind-ok", from: byServer, nowait: -1},

	key(50, 10): {name: "queue.declare", from: byClient, reply: 11, args: argQueueDeclare, nowait: 4},
	key(50, 11): {name: "queue.declare-ok", from: byServer, args: argQueueDeclareOk, nowait: -1},
	key(50, 20): {name: "queue.bind", from: byClient, reply: 21, args: argQueueBind, nowait: 0},
	key(50, 21): {name: "queue.bind-ok", from: byServer, nowait: -1},
	key(50, 30): {name: "queue.purge", from: byClient, reply: 31, args: argQueuePurge, nowait: 0},
	key(50, 31): {name: "queue.purge-ok", from: byServer, nowait: -1},
	key(50, 40): {name: "queue.delete", from: byClient, reply: 41, args: argQueuePurge, nowait: 2},
	key(50, 41): {name: "queue.delete-ok", from: byServer, nowait: -1},
	key(50, 50): {name: "queue.unbind", from: byClient, reply: 51, args: argQueueUnbind, nowait: -1},
	key(50, 51): {name: "queue.unbind-ok", from: byServer, nowait: -1},

	key(60, 10):  {name: "basic.qos", from: byClient, reply: 11, nowait: -1},
	key(60, 11):  {name: "basic.qos-ok", from: byServer, nowait: -1},
	key(60, 20):  {name: "basic.consume", from: byClient, reply: 21, args: argConsume, nowait: 3},
	key(60, 21):  {name: "basic.consume-ok", from: byServer, args: argConsumerTag, nowait: -1},
	key(60, 30):  {name: "basic.cancel", from: byBoth, reply: 31, args: argConsumerTag, nowait: 0},
	key(60, 31):  {name: "basic.cancel-ok", from: byBoth, args: argConsumerTag, nowait: -1},
	key(60, 40):  {name: "basic.publish", from: byClient, content: true, args: argPublish, nowait: -1},
	key(60, 50):  {name: "basic.return", from: byServer, content: true, args: argReturn, nowait: -1},
	key(60, 60):  {name: "basic.deliver", from: byServer, content: true, args: argDeliver, nowait: -1},
	key(60, 70):  {name: "basic.get", from: byClient, reply: 71, reply2: 72, args: argGet, nowait: -1},
	key(60, 71):  {name: "basic.get-ok", from: byServer, content: true, args: argGetOk, nowait: -1},
	key(60, 72):  {name: "basic.get-empty", from: byServer, nowait: -1},
	key(60, 80):  {name: "basic.ack", from: byBoth, args: argDeliveryTag, nowait: -1},
	key(60, 90):  {name: "basic.reject", from: byClient, args: argDeliveryTag, nowait: -1},
	key(60, 100): {name: "basic.recover-async", from: byClient, nowait: -1},
	key(60, 110): {name: "basic.recover", from: byClient, reply: 111, nowait: -1},
	key(60, 111): {name: "basic.recover-ok", from: byServer, nowait: -1},
	key(60, 120): {name: "basic.nack", from: byBoth, args: argDeliveryTag, nowait: -1},

	key(85, 10): {name: "confirm.select", from: byClient, reply: 11, args: argNowaitOnly, nowait: 0},
	key(85, 11): {name: "confirm.select-ok", from: byServer, nowait: -1},

	key(90, 10): {name: "tx.select", from: byClient, reply: 11, nowait: -1},
	key(90, 11): {name: "tx.select-ok", from: byServer, nowait: -1},
	key(90, 20): {name: "tx.commit", from: byClient, reply: 21, nowait: -1},
	key(90, 21): {name: "tx.commit-ok", from: byServer, nowait: -1},
	key(90, 30): {name: "tx.rollback", from: byClient, reply: 31, nowait: -1},
	key(90, 31): {name: "tx.rollback-ok", from: byServer, nowait: -1},
}

// replyCodeName names an AMQP reply code (connection and channel close,
// basic.return).
func replyCodeName(code int) string {
	switch code {
	case 200:
		return "REPLY_SUCCESS"
	case 311:
		return "CONTENT_TOO_LARGE"
	case 312:
		return "NO_ROUTE"
	case 313:
		return "NO_CONSUMERS"
	case 320:
		return "CONNECTION_FORCED"
	case 402:
		return "INVALID_PATH"
	case 403:
		return "ACCESS_REFUSED"
	case 404:
		return "NOT_FOUND"
	case 405:
		return "RESOURCE_LOCKED"
	case 406:
		return "PRECONDITION_FAILED"
	case 501:
		return "FRAME_ERROR"
	case 502:
		return "SYNTAX_ERROR"
	case 503:
		return "COMMAND_INVALID"
	case 504:
		return "CHANNEL_ERROR"
	case 505:
		return "UNEXPECTED_FRAME"
	case 506:
		return "RESOURCE_ERROR"
	case 530:
		return "NOT_ALLOWED"
	case 540:
		return "NOT_IMPLEMENTED"
	case 541:
		return "INTERNAL_ERROR"
	}
	return ""
}
