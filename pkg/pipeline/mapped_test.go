package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// shrinking truncates its file once the reader has taken after packets,
// as someone rotating or rewriting a capture under us would.
type shrinking struct {
	capture.Source
	path  string
	after int
	n     int
}

func (s *shrinking) Next(p *capture.Packet) error {
	if s.n++; s.n == s.after {
		if err := os.Truncate(s.path, 0); err != nil {
			return err
		}
	}
	return s.Source.Next(p)
}

func (s *shrinking) Held() *capture.Region { return s.Source.(capture.Holder).Held() }
func (s *shrinking) Mapped() bool          { return s.Source.(capture.Mapper).Mapped() }

// A mapped capture file that shrinks mid-run faults on its lost pages:
// the run must end with ErrFileChanged, having written what it had, not
// crash.
func TestMappedFileShrinks(t *testing.T) {
	var capt bytes.Buffer
	synth(t, &capt, 300, 40) // several windows
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, capt.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if !src.(capture.Mapper).Mapped() {
		t.Fatal("capture.Open did not map the file")
	}
	var out bytes.Buffer
	_, err = Run(context.Background(), &shrinking{Source: src, path: path, after: 5000}, &out, Options{Registry: lineRegistry(), Render: renderLine})
	if !errors.Is(err, capture.ErrFileChanged) {
		t.Fatalf("err = %v, want ErrFileChanged", err)
	}
	if n := strings.Count(out.String(), "\n"); n >= 300*40 {
		t.Errorf("%d entries: all of them, from a file cut short", n)
	}
}
