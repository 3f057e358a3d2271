// Package dns dissects DNS over UDP and TCP (RFC 1035, RFC 7766), including
// mDNS and LLMNR, which share the wire format.
//
// Each query is paired with its response by (id, question name, question
// type) into one entry: Method is the question type (A, AAAA, ...), Path the
// question name without its trailing dot, Status the response code
// (NOERROR, NXDOMAIN, ...; extended by EDNS when present). Record data is
// rendered as zone-file text. A query unanswered for 5 s of packet time, or
// at the end of the flow, becomes an entry with Error "no response"; a
// response whose query was not seen becomes one with Error "no query".
//
// Parsing is bounded: names follow at most 64 compression pointers and stop
// at 255 octets or 128 labels, at most 64 records per section are kept, and
// counts in the header never size an allocation. Parsers implement
// dissect.StatsReporter: Dropped counts undecodable messages and records
// beyond the per-section cap, Resyncs and Skipped the TCP gaps.
package dns

import (
	"encoding/binary"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// Protocol returns the DNS dissector.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:        "dns",
		Ports:       []uint16{53, 5353, 5355},
		Detect:      Detect,
		NewStream:   newStream,
		NewDatagram: newDatagram,
	}
}

// Detect recognises a DNS message, bare (UDP) or with the 2-octet length
// prefix of TCP: a plausible header whose questions parse. fromClient is
// true for a query (QR bit clear).
func Detect(data []byte) (dissect.Verdict, bool) {
	v, fromClient := detectMessage(data)
	if v == dissect.Yes {
		return v, fromClient
	}
	if len(data) < 2 {
		return dissect.Maybe, false
	}
	n := int(binary.BigEndian.Uint16(data))
	if n < headerLen {
		return v, fromClient
	}
	body := data[2:]
	if len(body) > n {
		body = body[:n]
	}
	fv, ffrom := detectMessage(body)
	if fv == dissect.Yes || v == dissect.No {
		return fv, ffrom
	}
	return v, fromClient
}

// detectMessage checks a header and every question of a message that may
// be cut short: Maybe when the bytes end before the questions do.
func detectMessage(b []byte) (dissect.Verdict, bool) {
	if len(b) < headerLen {
		return dissect.Maybe, false
	}
	h := readHeader(b)
	if !h.plausible() {
		return dissect.No, false
	}
	var buf [256]byte
	off := headerLen
	for i := 0; i < int(h.qdcount); i++ {
		_, q, next, err := appendQuestion(buf[:0], b, off)
		if err == errShort {
			return dissect.Maybe, false
		}
		if err != nil || q.qtype == 0 || !knownClass(q.qclass) {
			return dissect.No, false
		}
		off = next
	}
	return dissect.Yes, !h.response()
}

func knownClass(c uint16) bool {
	switch c {
	case 1, 3, 4, 254, 255:
		return true
	}
	return false
}
