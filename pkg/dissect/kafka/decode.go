package kafka

import (
	"encoding/base64"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// maxTopics bounds the topics an entry lists.
const maxTopics = 16

// exchange is one request and its response, built in place in the entry
// they become.
type exchange struct {
	e        entry.Entry
	k        entry.Kafka
	key      int16
	version  int16
	flexible bool
	noReply  bool // a Produce with acks=0: the broker does not answer
	// respTopics collects the topics a response names, for requests that
	// name none (Metadata for all topics, incremental Fetch sessions).
	respTopics []string
	respParts  int
}

func (x *exchange) addTopic(name string) {
	addTopic(&x.k.Topics, name)
}

func addTopic(list *[]string, name string) {
	if name == "" || len(*list) >= maxTopics {
		return
	}
	for _, t := range *list {
		if t == name {
			return
		}
	}
	*list = append(*list, name)
}

// setError records the first non-zero error code.
func (x *exchange) setError(code int16) {
	if code != 0 && x.k.ErrorCode == 0 {
		x.k.ErrorCode = code
	}
}

// topic reads a topic's name, or from the versions that name topics by id
// (Produce v13+, Fetch v13+, OffsetCommit and OffsetFetch v10+), its id,
// resolved to a name when a Metadata response showed it.
func (p *parser) topic(s *source, x *exchange, idFrom int16) string {
	if x.version >= idFrom {
		id := s.uuid()
		if name := p.ids.lookup(id); name != "" {
			return name
		}
		return base64.RawURLEncoding.EncodeToString(id[:])
	}
	return s.str(x.flexible)
}

// request decodes the body of a request.
func (p *parser) request(s *source, x *exchange) {
	f, v := x.flexible, x.version
	switch x.key {
	case apiProduce:
		if v >= 3 {
			s.skipStr(f) // transactional id
		}
		x.noReply = s.i16() == 0 // acks
		s.i32()                  // timeout
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			x.addTopic(p.topic(s, x, 13))
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				x.k.Partitions++
				s.i32()
				p.records(s, x, f)
				s.tags(f)
			}
			s.tags(f)
		}
	case apiFetch:
		if v <= 14 {
			s.i32() // replica id
		}
		s.skip(8) // max wait, min bytes
		if v >= 3 {
			s.i32()
		}
		if v >= 4 {
			s.i8()
		}
		if v >= 7 {
			s.skip(8) // session id and epoch
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			x.addTopic(p.topic(s, x, 13))
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				x.k.Partitions++
				s.skip(partitionFetchSize(v))
				s.tags(f)
			}
			s.tags(f)
		}
	case apiListOffsets:
		s.i32()
		if v >= 2 {
			s.i8()
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			x.addTopic(s.str(f))
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				x.k.Partitions++
				s.skip(listOffsetsPartitionSize(v))
				s.tags(f)
			}
			s.tags(f)
		}
	case apiMetadata:
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			if v >= 10 {
				s.uuid()
			}
			x.addTopic(s.str(f))
			s.tags(f)
		}
	case apiOffsetCommit:
		x.group(s.str(f))
		if v >= 1 {
			s.i32()
			s.skipStr(f) // member id
		}
		if v >= 7 {
			s.skipStr(f) // instance id
		}
		if v >= 2 && v <= 4 {
			s.i64()
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			x.addTopic(p.topic(s, x, 10))
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				x.k.Partitions++
				s.skip(12) // partition, offset
				if v == 1 {
					s.i64()
				}
				if v >= 6 {
					s.i32()
				}
				s.skipStr(f) // metadata
				s.tags(f)
			}
			s.tags(f)
		}
	case apiOffsetFetch:
		p.offsetFetchRequest(s, x)
	case apiFindCoordinator:
		if v <= 3 {
			x.group(s.str(f))
		}
		if v >= 1 {
			s.i8()
		}
		if v >= 4 {
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				x.group(s.str(f))
			}
		}
	case apiJoinGroup, apiHeartbeat:
		x.group(s.str(f))
	case apiApiVersions:
		if v >= 3 {
			if name := s.str(f); name != "" {
				x.e.Path = name // the client software
			}
		}
	}
}

func (x *exchange) group(id string) {
	if x.k.GroupID == "" {
		x.k.GroupID = id
	}
}

// partitionFetchSize is the fixed size of a Fetch request's partition.
func partitionFetchSize(v int16) int64 {
	n := int64(4 + 8 + 4) // partition, fetch offset, max bytes
	if v >= 9 {
		n += 4 // current leader epoch
	}
	if v >= 12 {
		n += 4 // last fetched epoch
	}
	if v >= 5 {
		n += 8 // log start offset
	}
	return n
}

func listOffsetsPartitionSize(v int16) int64 {
	n := int64(4 + 8) // partition, timestamp
	if v >= 4 {
		n += 4
	}
	if v == 0 {
		n += 4
	}
	return n
}

func (p *parser) offsetFetchRequest(s *source, x *exchange) {
	f, v := x.flexible, x.version
	topics := func(idFrom int16) {
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			x.addTopic(p.topic(s, x, idFrom))
			n := s.array(f)
			x.k.Partitions += max(n, 0)
			s.skip(4 * int64(max(n, 0)))
			s.tags(f)
		}
	}
	if v <= 7 {
		x.group(s.str(f))
		topics(99)
		return
	}
	for i, c := 0, s.array(f); i < c && s.ok(); i++ {
		x.group(s.str(f))
		if v >= 9 {
			s.skipStr(f)
			s.i32()
		}
		topics(10)
		s.tags(f)
	}
}

// response decodes the body of a response.
func (p *parser) response(s *source, x *exchange) {
	f, v := x.flexible, x.version
	switch x.key {
	case apiProduce:
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			p.topic(s, x, 13)
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				s.i32()
				x.setError(s.i16())
				s.i64() // base offset
				if v >= 2 {
					s.i64()
				}
				if v >= 5 {
					s.i64()
				}
				if v >= 8 {
					for i, c := 0, s.array(f); i < c && s.ok(); i++ {
						s.i32()
						s.skipStr(f)
						s.tags(f)
					}
					s.skipStr(f)
				}
				s.tags(f)
			}
			s.tags(f)
		}
	case apiFetch:
		if v >= 1 {
			s.i32()
		}
		if v >= 7 {
			x.setError(s.i16())
			s.i32()
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			name := p.topic(s, x, 13)
			addTopic(&x.respTopics, name)
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				x.respParts++
				s.i32()
				x.setError(s.i16())
				s.i64() // high watermark
				if v >= 4 {
					s.i64()
				}
				if v >= 5 {
					s.i64()
				}
				if v >= 4 {
					for i, c := 0, s.array(f); i < c && s.ok(); i++ {
						s.skip(16)
						s.tags(f)
					}
				}
				if v >= 11 {
					s.i32()
				}
				p.records(s, x, f)
				s.tags(f)
			}
			s.tags(f)
		}
	case apiListOffsets:
		if v >= 2 {
			s.i32()
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			s.skipStr(f)
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				s.i32()
				x.setError(s.i16())
				if v == 0 {
					s.skip(8 * int64(max(s.array(f), 0)))
				}
				if v >= 1 {
					s.skip(16)
				}
				if v >= 4 {
					s.i32()
				}
				s.tags(f)
			}
			s.tags(f)
		}
	case apiMetadata:
		p.metadataResponse(s, x)
	case apiOffsetCommit:
		if v >= 3 {
			s.i32()
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			p.topic(s, x, 10)
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				s.i32()
				x.setError(s.i16())
				s.tags(f)
			}
			s.tags(f)
		}
	case apiOffsetFetch:
		p.offsetFetchResponse(s, x)
	case apiFindCoordinator:
		if v >= 1 {
			s.i32()
		}
		if v <= 3 {
			x.setError(s.i16())
			return
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			s.skipStr(f)
			s.i32()
			s.skipStr(f)
			s.i32()
			x.setError(s.i16())
			s.skipStr(f)
			s.tags(f)
		}
	case apiJoinGroup:
		if v >= 2 {
			s.i32()
		}
		x.setError(s.i16())
	case apiHeartbeat:
		if v >= 1 {
			s.i32()
		}
		x.setError(s.i16())
	case apiApiVersions:
		x.setError(s.i16())
	}
}

func (p *parser) metadataResponse(s *source, x *exchange) {
	f, v := x.flexible, x.version
	if v >= 3 {
		s.i32()
	}
	for i, c := 0, s.array(f); i < c && s.ok(); i++ { // brokers
		s.i32()
		s.skipStr(f)
		s.i32()
		if v >= 1 {
			s.skipStr(f)
		}
		s.tags(f)
	}
	if v >= 2 {
		s.skipStr(f) // cluster id
	}
	if v >= 1 {
		s.i32()
	}
	for i, c := 0, s.array(f); i < c && s.ok(); i++ {
		x.setError(s.i16())
		name := s.str(f)
		if v >= 10 {
			p.ids.learn(s.uuid(), name)
		}
		addTopic(&x.respTopics, name)
		if v >= 1 {
			s.i8()
		}
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			x.respParts++
			x.setError(s.i16())
			s.skip(8) // partition, leader
			if v >= 7 {
				s.i32()
			}
			s.skip(4 * int64(max(s.array(f), 0))) // replicas
			s.skip(4 * int64(max(s.array(f), 0))) // isr
			if v >= 5 {
				s.skip(4 * int64(max(s.array(f), 0)))
			}
			s.tags(f)
		}
		if v >= 8 {
			s.i32()
		}
		s.tags(f)
	}
	if v >= 8 && v <= 10 {
		s.i32()
	}
	if v >= 13 {
		x.setError(s.i16())
	}
}

func (p *parser) offsetFetchResponse(s *source, x *exchange) {
	f, v := x.flexible, x.version
	if v >= 3 {
		s.i32()
	}
	topics := func(idFrom int16) {
		for i, c := 0, s.array(f); i < c && s.ok(); i++ {
			p.topic(s, x, idFrom)
			for i, c := 0, s.array(f); i < c && s.ok(); i++ {
				s.skip(12) // partition, offset
				if v >= 5 {
					s.i32()
				}
				s.skipStr(f)
				x.setError(s.i16())
				s.tags(f)
			}
			s.tags(f)
		}
	}
	if v <= 7 {
		topics(99)
		if v >= 2 {
			x.setError(s.i16())
		}
		return
	}
	for i, c := 0, s.array(f); i < c && s.ok(); i++ {
		s.skipStr(f)
		topics(10)
		x.setError(s.i16())
		s.tags(f)
	}
}

// records reads a partition's record batches: (compact) nullable bytes
// holding batches of magic 2, or message sets of magic 0 and 1. It counts
// batches, records (control batches aside), their bytes and compression;
// a batch cut short (the end of a Fetch response) is skipped uncounted.
func (p *parser) records(s *source, x *exchange, f bool) {
	n := s.length(f, false)
	if n <= 0 {
		return
	}
	if n > s.left {
		s.bad = true
		return
	}
	for n >= 17 && s.ok() {
		s.i64() // base offset
		blen := int64(s.i32())
		n -= 12
		if blen < 5 || blen > n {
			break
		}
		s.i32() // partition leader epoch (v2) or crc (v0, v1)
		magic := s.i8()
		used := int64(5)
		var codec int
		switch {
		case magic == 2 && blen >= 49:
			s.i32() // crc
			attrs := s.i16()
			s.skip(4 + 8 + 8 + 8 + 2 + 4) // last offset delta, timestamps, producer, sequence
			count := s.i32()
			used = 49
			codec = int(attrs & 7)
			if attrs&0x20 == 0 && count > 0 { // not a control batch
				x.k.Records += int64(count)
			}
		case magic == 0 || magic == 1:
			codec = int(s.i8() & 7)
			used = 6
			x.k.Records++ // a compressed wrapper counts as one
		}
		s.skip(blen - used)
		n -= blen
		x.k.Batches++
		x.k.RecordBytes += 12 + blen
		x.addCodec(codecName(codec))
	}
	s.skip(n)
}

// addCodec adds a codec to the entry's comma-separated list of the codecs
// its batches use, each named once, in the order seen.
func (x *exchange) addCodec(c string) {
	if c == "" {
		return
	}
	for rest := x.k.Compression; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ",")
		if name == c {
			return
		}
	}
	if x.k.Compression != "" {
		c = x.k.Compression + "," + c
	}
	x.k.Compression = c
}

func codecName(c int) string {
	switch c {
	case 1:
		return "gzip"
	case 2:
		return "snappy"
	case 3:
		return "lz4"
	case 4:
		return "zstd"
	}
	return ""
}
