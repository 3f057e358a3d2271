// Package store keeps the raw packets a worker captured in a ring of pcapng
// segment files on disk, bounded by size and age, and exports them on
// demand: the packets of some pods over a time range, or of one flow, as
// pcapng (one interface per pod, named namespace/pod) or pcap.
//
// Segments are ordinary pcapng files (seg-NNNNNNNNNNNNNNNN.pcapng) that
// tshark reads as they are. The index lives in memory: per segment, its
// time range, the interfaces (pods) it holds and a Bloom filter of its
// flows, so a query reads only the segments that can match. A store is
// per process: Open clears segments an earlier run left behind.
//
// Bounds: the closed segments plus one open segment never exceed Limit by
// more than one packet; the oldest segments go first. With a TTL, segments
// whose newest packet is older than the TTL are removed, and exports skip
// older packets.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// Defaults of Options.
const (
	DefaultLimit   = 200 << 20
	minSegmentSize = 64 << 10
	maxSegmentSize = 64 << 20
	// maxSegments bounds the in-memory index whatever the options.
	maxSegments = 1024
	segPrefix   = "seg-"
	segSuffix   = ".pcapng"
	// errorBackoff pauses writing after a disk error.
	errorBackoff = time.Second
)

// Options configure a Store.
type Options struct {
	// Dir holds the segments; it is created if missing.
	Dir string
	// Limit bounds the bytes of all segments on disk. Default 200 MiB.
	Limit int64
	// TTL drops packets older than this; 0 keeps them until Limit pushes
	// them out.
	TTL time.Duration
	// SegmentSize is the size at which a segment is closed and a new one
	// begun: the granularity of eviction. Default Limit/16, between 64 KiB
	// and 64 MiB, and at least Limit/1024.
	SegmentSize int64
	// Now is the clock TTLs are measured on; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("store: no directory")
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = o.Limit / 16
	}
	o.SegmentSize = min(max(o.SegmentSize, minSegmentSize, o.Limit/maxSegments), maxSegmentSize)
	if o.Limit < 2*o.SegmentSize {
		return o, fmt.Errorf("store: limit %d must hold at least two segments of %d bytes", o.Limit, o.SegmentSize)
	}
	if o.TTL < 0 {
		return o, fmt.Errorf("store: negative TTL %v", o.TTL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Stats describe the store.
type Stats struct {
	Bytes    int64 // on disk now, buffered bytes of the open segment included
	Segments int
	Oldest   time.Time // the oldest packet kept
	Newest   time.Time
	// Written counts packets and bytes stored since Open; Dropped the
	// packets lost to disk errors.
	Packets      uint64
	WrittenBytes uint64
	Dropped      uint64
	// Evicted and Expired count segments removed for the size limit and
	// for the TTL.
	Evicted, Expired uint64
	Errors           uint64
	LastError        string
}

// Store is a ring of pcapng segments. Its methods are safe for concurrent
// use; Write is meant for one writer goroutine, Export for any number.
type Store struct {
	opts Options

	mu      sync.Mutex
	ifaces  []capture.Interface
	byName  map[ifaceKey]int
	segs    []*segment // closed, oldest first
	cur     *segment   // open, or nil
	seq     uint64
	closed  int64 // bytes of segs
	dec     *capture.Decoder
	frame   capture.Frame
	stats   Stats
	pauseTo time.Time // no writes until then, after an error
	done    bool
}

// ifaceKey identifies an interface: pods keep one name across restarts.
type ifaceKey struct {
	name string
	link capture.LinkType
}

// Open creates the store in opts.Dir, removing segments left there by an
// earlier run.
func Open(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(opts.Dir, segPrefix+"*"+segSuffix))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("store: removing a stale segment: %w", err)
		}
	}
	return &Store{
		opts:   opts,
		byName: make(map[ifaceKey]int),
		// Flow keys only: fragments are not reassembled for the index.
		dec: capture.NewDecoder(capture.DecoderOptions{MaxFragmentBytes: -1}),
	}, nil
}

// Options returns the effective options.
func (s *Store) Options() Options { return s.opts }

// AddInterface registers a capture interface (a pod) and returns its id
// for Write. The same name and link type always get the same id.
func (s *Store) AddInterface(iface capture.Interface) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ifaceKey{iface.Name, iface.LinkType}
	if id, ok := s.byName[key]; ok {
		return id
	}
	s.ifaces = append(s.ifaces, iface)
	s.byName[key] = len(s.ifaces) - 1
	return len(s.ifaces) - 1
}

// Write stores packets captured on interface id. It never blocks on
// anything but the disk; errors are counted in Stats and pause writing
// for a second.
func (s *Store) Write(id int, pkts []capture.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || id < 0 || id >= len(s.ifaces) {
		s.stats.Dropped += uint64(len(pkts))
		return
	}
	for i := range pkts {
		if err := s.writeOne(id, &pkts[i]); err != nil {
			s.fail(err)
			s.stats.Dropped += uint64(len(pkts) - i)
			return
		}
	}
}

func (s *Store) writeOne(id int, p *capture.Packet) error {
	n := epbLen(p)
	if s.cur != nil && s.cur.packets > 0 && s.cur.size+n > s.opts.SegmentSize {
		if err := s.roll(); err != nil {
			return err
		}
	}
	if s.cur == nil {
		if now := s.opts.Now(); now.Before(s.pauseTo) {
			s.stats.Dropped++
			return nil
		}
		if err := s.create(); err != nil {
			return err
		}
	}
	seg := s.cur
	sid, err := seg.ifaceID(id, s.ifaces[id])
	if err != nil {
		return err
	}
	if err := seg.w.WritePacket(sid, p); err != nil {
		return err
	}
	seg.size = seg.w.Len()
	seg.note(p, id, s.flowKey(p))
	s.stats.Packets++
	s.stats.WrittenBytes += uint64(len(p.Data))
	return nil
}

// flowKey is the symmetric key of p's TCP or UDP flow, or 0.
func (s *Store) flowKey(p *capture.Packet) uint64 {
	if !s.dec.Decode(p, &s.frame) {
		return 0
	}
	f := &s.frame
	return tupleKey(f.Proto, f.Src, f.SrcPort, f.Dst, f.DstPort)
}

// create opens a new segment, first evicting old ones so that the closed
// segments and the new one fit in the limit.
func (s *Store) create() error {
	for len(s.segs) > 0 && (s.closed+s.opts.SegmentSize > s.opts.Limit || len(s.segs) >= maxSegments) {
		s.remove(0)
		s.stats.Evicted++
	}
	s.seq++
	path := filepath.Join(s.opts.Dir, fmt.Sprintf("%s%016d%s", segPrefix, s.seq, segSuffix))
	seg, err := newSegment(s.seq, path, s.opts.SegmentSize)
	if err != nil {
		return err
	}
	s.cur = seg
	return nil
}

// roll closes the open segment.
func (s *Store) roll() error {
	seg := s.cur
	s.cur = nil
	if err := seg.close(); err != nil {
		os.Remove(seg.path)
		return err
	}
	if seg.packets == 0 {
		return os.Remove(seg.path)
	}
	s.segs = append(s.segs, seg)
	s.closed += seg.size
	return nil
}

// remove deletes closed segment i.
func (s *Store) remove(i int) {
	seg := s.segs[i]
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.noteErr(err)
	}
	s.closed -= seg.size
	s.segs = append(s.segs[:i], s.segs[i+1:]...)
}

// fail drops the open segment after a write error, and pauses writing.
func (s *Store) fail(err error) {
	s.noteErr(err)
	if s.cur != nil {
		s.cur.close()
		os.Remove(s.cur.path)
		s.cur = nil
	}
	s.pauseTo = s.opts.Now().Add(errorBackoff)
}

func (s *Store) noteErr(err error) {
	s.stats.Errors++
	s.stats.LastError = err.Error()
}

// Maintain removes segments past the TTL, closes an open segment old
// enough that its packets would outlive the TTL by more than an eighth,
// and flushes the open segment so that readers see recent packets. Call
// it about once a second.
func (s *Store) Maintain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if s.cur != nil {
		if err := s.cur.w.Flush(); err != nil {
			s.fail(err)
		}
	}
	if s.opts.TTL <= 0 {
		return
	}
	now := s.opts.Now()
	if s.cur != nil && s.cur.packets > 0 && now.Sub(s.cur.first) > max(s.opts.TTL/8, time.Second) {
		if err := s.roll(); err != nil {
			s.fail(err)
		}
	}
	for len(s.segs) > 0 && now.Sub(s.segs[0].last) > s.opts.TTL {
		s.remove(0)
		s.stats.Expired++
	}
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Bytes = s.closed
	st.Segments = len(s.segs)
	all := s.segs
	if s.cur != nil {
		st.Bytes += s.cur.size
		st.Segments++
		all = append(all[:len(all):len(all)], s.cur)
	}
	for _, seg := range all {
		if seg.packets == 0 {
			continue
		}
		if st.Oldest.IsZero() || seg.first.Before(st.Oldest) {
			st.Oldest = seg.first
		}
		if seg.last.After(st.Newest) {
			st.Newest = seg.last
		}
	}
	return st
}

// Close flushes and closes the open segment. Segments stay on disk until
// the next Open (or RemoveAll) clears them.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	if s.cur == nil {
		return nil
	}
	return s.roll()
}

// RemoveAll closes the store and deletes every segment.
func (s *Store) RemoveAll() error {
	s.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for len(s.segs) > 0 {
		if err := os.Remove(s.segs[0].path); err != nil && first == nil {
			first = err
		}
		s.closed -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	return first
}
