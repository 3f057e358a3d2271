// Package wire defines the messages exchanged by the hub, its workers and
// its clients (the CLI, the dashboard): versioned, typed JSON envelopes
// over WebSocket, plus one binary frame that carries pcapng bytes.
//
// Worker → hub (wss://HUB:8443/v1/worker, TLS with the session CA,
// Authorization: Bearer <token>, query node=..&worker=..):
//
//	hello      Hello         first message, once
//	entries    Entries       a batch of dissected entries, already enriched
//	                         with the IPMap and matching the pushed-down filter
//	stats      Stats         counters, about every few seconds
//	pcap-end   PcapEnd       the end of the answer to a pcap-request
//	(binary)   pcap chunk    see AppendPcapChunk
//
// Hub → worker:
//
//	targets      Targets      the pods on the worker's node, and the IPMap
//	filter       Filter       the union of every subscriber's filter; "" is
//	                          everything, "false" nothing (no subscriber)
//	pcap-request PcapRequest  export packets as pcapng chunks
//	pcap-credit  PcapCredit   permission to send more chunks
//	pcap-cancel  PcapCancel   stop an export early
//
// Subscriber (CLI, dashboard) ⇄ hub on GET /v1/subscribe?filter=EXPR:
//
//	hub → client: entry (one entry.Entry), dropped Dropped, stats
//	              SessionStats, filter Filter (the filter now in effect,
//	              sent on connect and after each change), error Error
//	client → hub: filter Filter (change it), heartbeat (no data)
//
// Every envelope carries V == Version; a receiver rejects other versions.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the envelope version this package speaks.
const Version = 1

// Envelope is one message: its type names the struct held in Data.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Message types.
const (
	TypeHello       = "hello"
	TypeEntries     = "entries"
	TypeStats       = "stats"
	TypePcapEnd     = "pcap-end"
	TypeTargets     = "targets"
	TypeFilter      = "filter"
	TypePcapRequest = "pcap-request"
	TypePcapCredit  = "pcap-credit"
	TypePcapCancel  = "pcap-cancel"
	TypeEntry       = "entry"
	TypeDropped     = "dropped"
	TypeError       = "error"
	TypeHeartbeat   = "heartbeat"
)

// ErrVersion is wrapped by Parse for an envelope of another version.
var ErrVersion = errors.New("unsupported message version")

// Marshal encodes data (nil for none) in an envelope of type typ.
func Marshal(typ string, data any) ([]byte, error) {
	env := Envelope{V: Version, Type: typ}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("wire: encoding %s: %w", typ, err)
		}
		env.Data = b
	}
	return json.Marshal(env)
}

// Parse decodes an envelope and checks its version and type.
func Parse(msg []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		return env, fmt.Errorf("wire: bad envelope: %w", err)
	}
	if env.V != Version {
		return env, fmt.Errorf("wire: %w %d (this side speaks %d)", ErrVersion, env.V, Version)
	}
	if env.Type == "" {
		return env, errors.New("wire: envelope without a type")
	}
	return env, nil
}

// Decode decodes the envelope's data into v.
func (e Envelope) Decode(v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("wire: %s message without data", e.Type)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("wire: bad %s message: %w", e.Type, err)
	}
	return nil
}

// CutData returns the data of msg when msg is an envelope of type typ in
// the form Marshal writes ({"v":1,"type":"...","data":...}), without
// parsing it; ok is false otherwise. It lets a receiver decode a hot
// message type in one pass: if decoding the data fails, Parse the whole
// message instead (data is then not a JSON value on its own).
func CutData(msg []byte, typ string) (data []byte, ok bool) {
	const head = `{"v":` + versionText + `,"type":"`
	const tail = `","data":`
	n := len(head) + len(typ) + len(tail)
	if len(msg) < n+2 || msg[len(msg)-1] != '}' ||
		string(msg[:len(head)]) != head ||
		string(msg[len(head):len(head)+len(typ)]) != typ ||
		string(msg[len(head)+len(typ):n]) != tail {
		return nil, false
	}
	return msg[n : len(msg)-1], true
}

// versionText is Version as text; a test keeps them equal.
const versionText = "1"
