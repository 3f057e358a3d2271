package render

import (
	"encoding/json"
	"fmt"
	"text/template"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// templateRenderer executes a text/template over each *entry.Entry; its
// fields are reached by their Go names ({{.Src.Pod}}, {{.DNS.QName}}).
type templateRenderer struct {
	t *template.Template
}

// newTemplate parses src with the funcs templates may call:
//
//	json X        X as JSON (an entry in its pkg/entry form)
//	color C TEXT  TEXT in color C (red, green, yellow, blue, magenta, cyan,
//	              bold, dim), or in the stable color of C as a pod name
//	              when C names no color; plain when colors are off
//	latency E     the entry's elapsed time, as the line format shows it
//	endpoint P    an Endpoint as the line format shows it
func newTemplate(src string, color bool) (*templateRenderer, error) {
	if src == "" {
		return nil, fmt.Errorf("render: template format needs a template")
	}
	funcs := template.FuncMap{
		"json":     templateJSON,
		"color":    func(c string, text any) string { return colorize(color, c, fmt.Sprint(text)) },
		"latency":  func(e *entry.Entry) string { return string(appendLatency(nil, e)) },
		"endpoint": func(p entry.Endpoint) string { return string(appendEndpointText(nil, &p)) },
	}
	t, err := template.New("output").Funcs(funcs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return &templateRenderer{t: t}, nil
}

func (r *templateRenderer) Header(dst []byte) []byte { return dst }

// Append executes the template; an execution error is rendered in place of
// the entry, since one odd entry must not stop the output.
func (r *templateRenderer) Append(dst []byte, e *entry.Entry) []byte {
	w := appender{buf: dst}
	start := len(dst)
	if err := r.t.Execute(&w, sanitized(e)); err != nil {
		w.buf = append(w.buf[:start], "<template error: "...)
		w.buf = append(appendSafe(w.buf, err.Error(), maxPathText), '>')
	}
	if len(w.buf) == start || w.buf[len(w.buf)-1] != '\n' {
		w.buf = append(w.buf, '\n')
	}
	return w.buf
}

// appender is an io.Writer onto a byte slice.
type appender struct{ buf []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.buf = append(a.buf, p...)
	return len(p), nil
}

func templateJSON(v any) (string, error) {
	switch x := v.(type) {
	case *entry.Entry:
		return string(AppendJSON(nil, x)), nil
	case entry.Entry:
		return string(AppendJSON(nil, &x)), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func colorize(enabled bool, c, text string) string {
	if !enabled {
		return text
	}
	code, ok := namedColors[c]
	if !ok {
		code = podColor("", c)
	}
	return code + text + ansiReset
}

// sanitized returns e, or a shallow copy whose top-level strings have their
// control characters escaped as the line format does, so that bytes from
// the wire cannot inject terminal sequences or break lines through a
// template. Nested objects are left as they are; {{json}} escapes them.
func sanitized(e *entry.Entry) *entry.Entry {
	fields := []*string{&e.ID, &e.Proto, &e.Method, &e.Path, &e.Status, &e.Error, &e.FlowID, &e.Node, &e.Worker}
	if !anyUnsafe(fields) && !anyUnsafe(endpointFields(&e.Src)) && !anyUnsafe(endpointFields(&e.Dst)) {
		return e
	}
	c := *e
	for _, p := range []*string{&c.ID, &c.Proto, &c.Method, &c.Path, &c.Status, &c.Error, &c.FlowID, &c.Node, &c.Worker} {
		*p = safeString(*p)
	}
	for _, p := range append(endpointFields(&c.Src), endpointFields(&c.Dst)...) {
		*p = safeString(*p)
	}
	return &c
}

func endpointFields(p *entry.Endpoint) []*string {
	return []*string{&p.IP, &p.Pod, &p.Namespace, &p.Node, &p.Service, &p.Workload, &p.Process}
}

func anyUnsafe(ps []*string) bool {
	for _, p := range ps {
		if safeString(*p) != *p {
			return true
		}
	}
	return false
}

// safeString is appendSafe for a whole string; it allocates only when s
// needs escaping.
func safeString(s string) string {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b >= 0x7F {
			return string(appendSafe(nil, s, len(s)))
		}
	}
	return s
}
