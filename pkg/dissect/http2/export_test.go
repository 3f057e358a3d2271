package http2

// Test helpers for the external test package, which drives this package
// through the detection framework and the HTTP/1 dissector.
var (
	RecordH2C     = recordH2C
	RecordGRPC    = recordGRPC
	RecordUpgrade = recordUpgrade
)

type (
	Recording = recording
	Chunk     = chunk
)

// Dir and Data expose a chunk's fields.
func (c Chunk) Dir() int      { return int(c.dir) }
func (c Chunk) Bytes() []byte { return c.data }
