package worker

import (
	"bytes"
	"io"
	"sync"
)

// maxPendingLine bounds what a lineWriter holds back waiting for a newline;
// past it the bytes go out as they are.
const maxPendingLine = 1 << 20

// lineWriters share one destination among pipelines without interleaving
// inside a line: each pipeline buffers its output and may cut it anywhere,
// so each writer passes on only whole lines, under one lock.
type lineWriters struct {
	mu  sync.Mutex
	dst io.Writer
}

func newLineWriters(dst io.Writer) *lineWriters { return &lineWriters{dst: dst} }

// writer returns a writer for one pipeline (one goroutine).
func (l *lineWriters) writer() io.Writer { return &lineWriter{l: l} }

type lineWriter struct {
	l       *lineWriters
	pending []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		w.pending = append(w.pending, p...)
		if len(w.pending) < maxPendingLine {
			return n, nil
		}
		p = p[:0]
	}
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if len(w.pending) > 0 {
		if _, err := w.l.dst.Write(w.pending); err != nil {
			w.pending = w.pending[:0]
			return 0, err
		}
		w.pending = w.pending[:0]
	}
	if _, err := w.l.dst.Write(p[:i+1]); err != nil {
		return 0, err
	}
	w.pending = append(w.pending, p[i+1:]...)
	return n, nil
}
