package wire

import (
	"errors"
	"fmt"
)

// A pcap chunk is a binary WebSocket message from a worker:
//
//	byte 0      ChunkPcap
//	byte 1      n, the length of the export id (1..MaxIDLen)
//	bytes 2..   the export id, then the chunk's pcapng bytes
//
// Binary frames spare the 33% of base64 in JSON, and the id up front lets
// the hub route a chunk without parsing it.
const (
	ChunkPcap byte = 1
	// MaxPcapChunk bounds the pcapng bytes of one chunk.
	MaxPcapChunk = 256 << 10
	// MaxIDLen bounds an export id.
	MaxIDLen = 64
)

// ErrBadChunk is wrapped by ParsePcapChunk's errors.
var ErrBadChunk = errors.New("bad pcap chunk")

// AppendPcapChunk appends the chunk message of export id holding data to
// dst. It panics on an id of the wrong length or data over MaxPcapChunk,
// which are bugs of the sender.
func AppendPcapChunk(dst []byte, id string, data []byte) []byte {
	if len(id) == 0 || len(id) > MaxIDLen || len(data) > MaxPcapChunk {
		panic(fmt.Sprintf("wire: pcap chunk with a %d-byte id and %d bytes of data", len(id), len(data)))
	}
	dst = append(dst, ChunkPcap, byte(len(id)))
	dst = append(dst, id...)
	return append(dst, data...)
}

// ParsePcapChunk splits a chunk message. data aliases msg.
func ParsePcapChunk(msg []byte) (id string, data []byte, err error) {
	if len(msg) < 2 {
		return "", nil, fmt.Errorf("%w: %d bytes", ErrBadChunk, len(msg))
	}
	if msg[0] != ChunkPcap {
		return "", nil, fmt.Errorf("%w: kind %d", ErrBadChunk, msg[0])
	}
	n := int(msg[1])
	if n == 0 || n > MaxIDLen || len(msg) < 2+n {
		return "", nil, fmt.Errorf("%w: id length %d in %d bytes", ErrBadChunk, n, len(msg))
	}
	data = msg[2+n:]
	if len(data) > MaxPcapChunk {
		return "", nil, fmt.Errorf("%w: %d bytes of data, over %d", ErrBadChunk, len(data), MaxPcapChunk)
	}
	return string(msg[2 : 2+n]), data, nil
}
