package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
)

// dnsQuery is one question of the DNS plan.
type dnsQuery struct {
	name  string
	qtype dnsmessage.Type
}

// dnsPlan matches the records hack/record-testdata.sh gives dnsmasq under
// shark.test; missing.shark.test is NXDOMAIN.
var dnsPlan = []dnsQuery{
	{"shop.shark.test.", dnsmessage.TypeA},
	{"api.shark.test.", dnsmessage.TypeAAAA},
	{"shark.test.", dnsmessage.TypeMX},
	{"shark.test.", dnsmessage.TypeTXT},
	{"_http._tcp.shark.test.", dnsmessage.TypeSRV},
	{"missing.shark.test.", dnsmessage.TypeA},
	{"api.shark.test.", dnsmessage.TypeA},
	{"shop.shark.test.", dnsmessage.TypeAAAA},
}

func runDNSClient(ctx context.Context, args []string) error {
	fs := newFlagSet("dns-client")
	var cf clientFlags
	cf.register(fs, len(dnsPlan)*2, 1)
	server := fs.String("server", "127.0.0.1:53", "DNS server address")
	overTCP := fs.Int("tcp", 4, "how many of the -n queries go over one TCP connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if *overTCP < 0 || *overTCP > cf.n {
		return errors.New("-tcp must be between 0 and -n")
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	var rec recorder
	udpCount := cf.n - *overTCP
	err := forEach(ctx, udpCount, cf.c, func(ctx context.Context, i int) error {
		q := dnsPlan[i%len(dnsPlan)]
		rcode, err := queryUDP(ctx, *server, uint16(i+1), q)
		if err != nil {
			return err
		}
		rec.dns(tshark.QTypeName(uint16(q.qtype)), tshark.RCodeName(int(rcode)))
		return nil
	})
	if err != nil {
		return err
	}
	if *overTCP > 0 {
		if err := queryTCP(ctx, *server, udpCount, *overTCP, &rec); err != nil {
			return err
		}
	}
	return rec.save(cf.log)
}

func buildQuery(id uint16, q dnsQuery) ([]byte, error) {
	name, err := dnsmessage.NewName(q.name)
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: name, Type: q.qtype, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// checkAnswer parses a response and returns its rcode.
func checkAnswer(msg []byte, id uint16) (dnsmessage.RCode, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return 0, err
	}
	if h.ID != id || !h.Response {
		return 0, fmt.Errorf("dns: unexpected message id %d (want response to %d)", h.ID, id)
	}
	return h.RCode, nil
}

func queryUDP(ctx context.Context, server string, id uint16, q dnsQuery) (dnsmessage.RCode, error) {
	msg, err := buildQuery(id, q)
	if err != nil {
		return 0, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(msg); err != nil {
		return 0, err
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("dns %s %v: %w", q.name, q.qtype, err)
	}
	return checkAnswer(buf[:n], id)
}

// queryTCP sends n queries one after another on one TCP connection, each
// with its two-byte length prefix (RFC 1035 section 4.2.2).
func queryTCP(ctx context.Context, server string, first, n int, rec *recorder) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	for i := first; i < first+n; i++ {
		q := dnsPlan[i%len(dnsPlan)]
		id := uint16(i + 1)
		msg, err := buildQuery(id, q)
		if err != nil {
			return err
		}
		frame := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
		if _, err := conn.Write(append(frame, msg...)); err != nil {
			return err
		}
		var size [2]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return fmt.Errorf("dns over tcp: %w", err)
		}
		resp := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(conn, resp); err != nil {
			return fmt.Errorf("dns over tcp: %w", err)
		}
		rcode, err := checkAnswer(resp, id)
		if err != nil {
			return err
		}
		rec.dns(tshark.QTypeName(uint16(q.qtype)), tshark.RCodeName(int(rcode)))
	}
	return nil
}
