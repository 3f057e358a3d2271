// Package kafka dissects the Kafka wire protocol into entries: one per
// request and its response, paired by correlation id.
//
// Every request's header is read (API key by name, version, correlation
// id, client id). The bodies of Produce, Fetch, ListOffsets, Metadata,
// OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, Heartbeat and
// ApiVersions are decoded, in every version up to those Kafka 4 and
// current clients send, flexible versions (compact types, tagged fields)
// included: topics (by name, or by id from Produce and Fetch v13, resolved
// through Metadata responses), partition counts, group ids, and the first
// error code. Record batches of Produce requests and Fetch responses are
// walked for batch and record counts, sizes and compression (gzip, snappy,
// lz4, zstd), without being decompressed or held.
//
// Method is the API name, Path the first topic (or group id, for the group
// APIs), Status OK or the error's name. A Produce with acks=0 gets no
// response and is emitted at once with Status "noreply".
//
// Each direction is decoded by a coroutine (iter.Pull) that reads the
// stream as it arrives and skips what it does not need, so memory is
// bounded whatever a message's size: one small value and strings of at
// most 256 bytes are copied, at most 16 topics are listed, and at most
// 1024 requests wait for responses.
package kafka

import (
	"encoding/binary"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Protocol returns the Kafka dissector. Its parsers share the topic ids
// learned from Metadata responses.
func Protocol() dissect.Protocol {
	ids := newTopicIDs()
	return dissect.Protocol{
		Name:        entry.ProtoKafka,
		Ports:       []uint16{9092, 9093, 9094},
		Detect:      Detect,
		SharedState: true, // topic ids
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit, ids)
		},
	}
}

// Detect recognises a request: a size, a known API key with a plausible
// version, a correlation id, and a printable client id, from the client.
// Responses start with a size and a correlation id only, which say too
// little: they are Maybe when the size is plausible.
func Detect(data []byte) (dissect.Verdict, bool) {
	v, from := detectRequest(data)
	if v != dissect.No || len(data) < 8 {
		return v, from
	}
	if size := binary.BigEndian.Uint32(data); size >= 4 && size <= maxMessage {
		return dissect.Maybe, false
	}
	return dissect.No, false
}

func detectRequest(data []byte) (dissect.Verdict, bool) {
	if len(data) < 14 {
		if len(data) >= 4 && binary.BigEndian.Uint32(data) > maxMessage {
			return dissect.No, false
		}
		return dissect.Maybe, true
	}
	size := int(binary.BigEndian.Uint32(data))
	key := int16(binary.BigEndian.Uint16(data[4:]))
	version := int16(binary.BigEndian.Uint16(data[6:]))
	corr := int32(binary.BigEndian.Uint32(data[8:]))
	idLen := int(int16(binary.BigEndian.Uint16(data[12:])))
	if size < 10 || size > maxMessage || apiName(key) == "" || version < 0 || version > maxVersion || corr < 0 {
		return dissect.No, false
	}
	if key == apiControlledShutdown && version == 0 {
		return dissect.Maybe, true // no client id to check
	}
	if idLen < -1 || 10+idLen > size {
		return dissect.No, false
	}
	id := data[14:min(len(data), 14+max(idLen, 0))]
	for _, c := range id {
		if c < 0x20 || c > 0x7E {
			return dissect.No, false
		}
	}
	if len(id) < idLen {
		return dissect.Maybe, true
	}
	return dissect.Yes, true
}
