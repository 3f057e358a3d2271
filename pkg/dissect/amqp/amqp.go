// Package amqp dissects AMQP 0-9-1 (RabbitMQ's protocol, with its
// extensions) into entries: one per method, by class.method name.
//
// A synchronous method is paired with its reply on the same channel
// (queue.declare with queue.declare-ok, basic.get with basic.get-ok or
// basic.get-empty, connection.start with start-ok, ...): Status is the
// reply's name, or the reply code when a channel.close or connection.close
// refused it ("404 NOT_FOUND"). A method sent with no-wait, and the
// asynchronous ones (basic.publish, basic.deliver, basic.ack, ...), are
// entries of their own. Content header and body frames are assembled into
// the message of basic.publish, basic.deliver, basic.return and
// basic.get-ok: properties (content-type, headers, ...) and the body, kept
// up to Options.MaxBody with its true size. Path is exchange/routing-key
// for a message, the queue or exchange a method names otherwise. The SASL
// response of connection.start-ok and the secrets of connection.secure-ok
// and update-secret are never read.
//
// Memory is bounded: a frame keeps at most 64 KiB of arguments or
// properties and MaxBody of body bytes, and at most 16 requests on each of
// 2048 channels wait for replies.
package amqp

import (
	"bytes"
	"encoding/binary"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Protocol returns the AMQP 0-9-1 dissector.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:   entry.ProtoAMQP,
		Ports:  []uint16{5672},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit)
		},
	}
}

// Detect recognises the 0-9-1 protocol header, from the client; or,
// mid-connection, a complete method frame of a known class and method,
// oriented by which peer sends that method. Methods either peer may send
// (close, ack, ...) and other frames are Maybe.
func Detect(data []byte) (dissect.Verdict, bool) {
	if len(data) == 0 {
		return dissect.Maybe, false
	}
	if data[0] == 'A' {
		n := min(len(data), len(protocolHeader))
		if !bytes.Equal(data[:n], protocolHeader[:n]) {
			return dissect.No, false
		}
		if n < len(protocolHeader) {
			return dissect.Maybe, true
		}
		return dissect.Yes, true
	}
	switch data[0] {
	case frameMethod, frameHeader, frameBody, frameHeartbeat:
	default:
		return dissect.No, false
	}
	if len(data) < 8 {
		return dissect.Maybe, false
	}
	size := int(binary.BigEndian.Uint32(data[3:]))
	if size > maxFrame {
		return dissect.No, false
	}
	if len(data) < 8+size {
		if data[0] == frameMethod && len(data) >= 11 {
			if _, ok := methods[key(binary.BigEndian.Uint16(data[7:]), binary.BigEndian.Uint16(data[9:]))]; !ok {
				return dissect.No, false
			}
		}
		return dissect.Maybe, false
	}
	if data[7+size] != frameEnd {
		return dissect.No, false
	}
	if data[0] != frameMethod || size < 4 {
		return dissect.Maybe, false
	}
	m, ok := methods[key(binary.BigEndian.Uint16(data[7:]), binary.BigEndian.Uint16(data[9:]))]
	switch {
	case !ok:
		return dissect.No, false
	case m.from == byClient:
		return dissect.Yes, true
	case m.from == byServer:
		return dissect.Yes, false
	}
	return dissect.Maybe, false
}
