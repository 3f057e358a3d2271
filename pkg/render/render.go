// Package render turns entries into output bytes: one aligned line per
// entry (line, wide), NDJSON in the exact pkg/entry JSON form (json), or a
// Go text/template (template).
//
// Renderers append to a caller's buffer and keep no state between calls,
// so one Renderer may serve many goroutines rendering shards in parallel.
package render

import (
	"fmt"
	"os"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Format names an output format, as given to -o.
type Format string

const (
	FormatLine     Format = "line"
	FormatWide     Format = "wide"
	FormatJSON     Format = "json"
	FormatTemplate Format = "template"
)

// Formats lists the formats in the order help text shows them.
var Formats = []Format{FormatLine, FormatWide, FormatJSON, FormatTemplate}

// ColorMode says when to color: auto colors a TTY only.
type ColorMode string

const (
	ColorAuto   ColorMode = "auto"
	ColorAlways ColorMode = "always"
	ColorNever  ColorMode = "never"
)

// Options choose a renderer. The zero value renders uncolored lines.
type Options struct {
	Format Format // "" means line
	// Template is the text/template source for FormatTemplate.
	Template string
	Color    ColorMode // "" means auto
	// IsTTY says whether the output is a terminal; the CLI finds out.
	IsTTY bool
	// NoHeaders leaves out the column header of line and wide.
	NoHeaders bool
	// Wide adds sizes, flow id, node, TLS and error to line output; the
	// same as FormatWide.
	Wide bool
	// Location is the zone of line timestamps; nil means time.Local.
	Location *time.Location
}

// Renderer renders entries. Implementations are safe for concurrent use.
type Renderer interface {
	// Header appends the column header line, if the format has one and
	// headers are on, or returns dst unchanged.
	Header(dst []byte) []byte
	// Append appends one entry as one or more complete lines, each ending
	// in "\n".
	Append(dst []byte, e *entry.Entry) []byte
}

// New returns the renderer opts describe, or an error naming the bad
// option (an unknown format or color mode, a template that does not
// parse).
func New(opts Options) (Renderer, error) {
	color, err := opts.colorEnabled()
	if err != nil {
		return nil, err
	}
	loc := opts.Location
	if loc == nil {
		loc = time.Local
	}
	switch opts.Format {
	case "", FormatLine, FormatWide:
		wide := opts.Wide || opts.Format == FormatWide
		return &lineRenderer{wide: wide, color: color, headers: !opts.NoHeaders, loc: loc}, nil
	case FormatJSON:
		return jsonRenderer{}, nil
	case FormatTemplate:
		return newTemplate(opts.Template, color)
	}
	return nil, fmt.Errorf("render: unknown output format %q (want line, wide, json or template)", opts.Format)
}

// colorEnabled resolves the color mode; auto honours NO_COLOR
// (no-color.org).
func (o Options) colorEnabled() (bool, error) {
	switch o.Color {
	case ColorAlways:
		return true, nil
	case ColorNever:
		return false, nil
	case "", ColorAuto:
		return o.IsTTY && os.Getenv("NO_COLOR") == "", nil
	}
	return false, fmt.Errorf("render: unknown color mode %q (want auto, always or never)", o.Color)
}

// jsonRenderer writes NDJSON: one entry per line.
type jsonRenderer struct{}

func (jsonRenderer) Header(dst []byte) []byte { return dst }

func (jsonRenderer) Append(dst []byte, e *entry.Entry) []byte {
	return append(AppendJSON(dst, e), '\n')
}
