package worker

import (
	"sync"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
)

// WriterSink writes every captured packet to a capture stream (sniff -w):
// one pcapng interface per capture. The first write error stops it; Err
// reports it.
type WriterSink struct {
	mu      sync.Mutex
	w       store.PacketWriter
	err     error
	packets uint64
}

// NewWriterSink returns a sink writing to w.
func NewWriterSink(w store.PacketWriter) *WriterSink { return &WriterSink{w: w} }

// AddInterface implements Sink.
func (s *WriterSink) AddInterface(iface capture.Interface) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return -1
	}
	id, err := s.w.AddInterface(iface)
	if err != nil {
		s.err = err
		return -1
	}
	return id
}

// Write implements Sink.
func (s *WriterSink) Write(id int, pkts []capture.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || id < 0 {
		return
	}
	for i := range pkts {
		if err := s.w.WritePacket(id, &pkts[i]); err != nil {
			s.err = err
			return
		}
	}
	s.packets += uint64(len(pkts))
}

// Maintain flushes the stream about once a second, so a reader of a pipe
// (wireshark -k -i -) sees packets as they come.
func (s *WriterSink) Maintain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.w.Flush()
	}
}

// Close flushes the stream and returns the first error.
func (s *WriterSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

// Packets returns the packets written.
func (s *WriterSink) Packets() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.packets
}
