package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// runTo runs the line pipeline over capt into out.
func runTo(t *testing.T, capt []byte, out io.Writer) error {
	t.Helper()
	src, err := capture.NewReader(bytes.NewReader(capt))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), src, out, Options{Registry: lineRegistry(), Render: renderLine, Shards: 3})
	return err
}

// Output to a file goes out with writev, straight from the shards'
// buffers: it must be byte for byte what the buffered writer writes, to a
// regular file and to a pipe that a slow reader keeps full (short writes,
// EAGAIN).
func TestFileOutputMatchesBuffered(t *testing.T) {
	var capt bytes.Buffer
	synth(t, &capt, 200, 30)
	var want bytes.Buffer
	if err := runTo(t, capt.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	if want.Len() < 1<<17 {
		t.Fatalf("only %d bytes of output: too little to fill a pipe", want.Len())
	}

	path := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if newVecWriter(f) == nil {
		t.Fatal("no vectored writer for a file")
	}
	if err := runTo(t, capt.Bytes(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file output (%d bytes) differs from the buffered output (%d bytes)", len(got), want.Len())
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for i := 0; ; i++ {
			if i%16 == 0 {
				time.Sleep(time.Millisecond) // let the pipe fill
			}
			n, err := pr.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.Bytes()
	}()
	err = runTo(t, capt.Bytes(), pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if g := <-got; !bytes.Equal(g, want.Bytes()) {
		t.Errorf("pipe output (%d bytes) differs from the buffered output (%d bytes)", len(g), want.Len())
	}
}

// A reader that goes away stops the run with EPIPE.
func TestFileOutputBrokenPipe(t *testing.T) {
	var capt bytes.Buffer
	synth(t, &capt, 200, 30)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	defer pw.Close()
	if err := runTo(t, capt.Bytes(), pw); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("err = %v, want EPIPE", err)
	}
}

func TestAdvance(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), []byte("de"), []byte("fghi")}
	for _, c := range []struct {
		n    int
		want string
	}{{0, "abc|de|fghi"}, {2, "c|de|fghi"}, {3, "de|fghi"}, {6, "ghi"}, {9, ""}} {
		in := append([][]byte(nil), bufs...)
		var parts [][]byte
		for _, b := range advance(in, c.n) {
			parts = append(parts, b)
		}
		if got := string(bytes.Join(parts, []byte("|"))); got != c.want {
			t.Errorf("advance(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
