package dns

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// datagramParser reads one DNS message per UDP datagram.
type datagramParser struct {
	t *tracker
}

func newDatagram(c *dissect.Conn, emit dissect.Emitter) dissect.DatagramParser {
	return &datagramParser{t: newTracker(c, emit, "udp")}
}

// Datagram decodes one message; the QR bit, not dir, says whether it is a
// query, so a flow seen from its middle still pairs.
func (p *datagramParser) Datagram(_ dissect.Dir, data []byte, ts time.Time) {
	m, err := parseMessage(data)
	if err != nil {
		p.t.stats.Dropped++
		p.t.expire(ts)
		return
	}
	p.t.message(m, ts)
}

func (p *datagramParser) End(time.Time) { p.t.end() }

// Stats implements dissect.StatsReporter.
func (p *datagramParser) Stats() dissect.ParserStats { return p.t.stats }
