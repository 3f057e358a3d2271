package tshark

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// record is one dissected message as tshark shows it: an HTTP/1 message, a
// DNS message, or one HTTP/2 frame. A TCP segment may carry several, so the
// oracles work on records, not on frames.
type record struct {
	kind      string // "http", "dns" or "http2"
	frame     int
	tcpStream int // -1 outside TCP
	fields    []field
}

// field is one PDML field in document order.
type field struct{ name, show string }

// first returns the first value of the named field, and whether it exists.
func (r *record) first(name string) (string, bool) {
	for _, f := range r.fields {
		if f.name == name {
			return f.show, true
		}
	}
	return "", false
}

// headers returns the HTTP/2 header name/value pairs of the record, in
// order. tshark puts the lengths between a name and its value.
func (r *record) headers() [][2]string {
	var (
		hs      [][2]string
		name    string
		pending bool
	)
	for _, f := range r.fields {
		switch f.name {
		case "http2.header.name":
			name, pending = f.show, true
		case "http2.header.value":
			if pending {
				hs = append(hs, [2]string{name, f.show})
				pending = false
			}
		}
	}
	return hs
}

// unitKind names the PDML elements that start a record.
func unitKind(e xml.StartElement) string {
	name := attr(e, "name")
	switch {
	case e.Name.Local == "proto" && (name == "http" || name == "dns"):
		return name
	case e.Name.Local == "field" && name == "http2.stream":
		return "http2"
	}
	return ""
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// records runs tshark with PDML output and streams the records out of it, so
// memory holds the records, not the far larger XML.
func (r *Runner) records(ctx context.Context, file, displayFilter string) ([]record, error) {
	cmd, stderr, err := r.command(ctx, file, displayFilter,
		"-T", "pdml", "-J", "frame tcp udp http http2 dns")
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tshark: %w", err)
	}
	recs, perr := parsePDML(stdout)
	// Drain so tshark never blocks on a full pipe after a parse error.
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("tshark %s: %w: %s", strings.Join(cmd.Args[1:], " "), err, errText(stderr.String()))
	}
	return recs, perr
}

// parsePDML walks PDML and returns its records in document order.
func parsePDML(in io.Reader) ([]record, error) {
	dec := xml.NewDecoder(in)
	var (
		recs      []record
		cur       *record
		curDepth  int // element depth at which cur started
		depth     int
		frame     int
		tcpStream = -1
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tshark: parse pdml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			name, show := attr(t, "name"), attr(t, "show")
			switch {
			case t.Name.Local == "packet":
				frame, tcpStream = 0, -1
			case name == "frame.number":
				frame, _ = strconv.Atoi(show)
			case name == "tcp.stream":
				tcpStream, _ = strconv.Atoi(show)
			}
			if cur == nil {
				if kind := unitKind(t); kind != "" {
					cur = &record{kind: kind, frame: frame, tcpStream: tcpStream}
					curDepth = depth
				}
				continue
			}
			if t.Name.Local == "field" && name != "" {
				cur.fields = append(cur.fields, field{name: name, show: show})
			}
		case xml.EndElement:
			if cur != nil && depth == curDepth {
				recs = append(recs, *cur)
				cur = nil
			}
			depth--
		}
	}
}
