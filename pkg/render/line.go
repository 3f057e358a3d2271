package render

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Column widths of the line format; longer values push the rest right
// rather than being cut.
const (
	endpointWidth = 36
	protoWidth    = 6
	methodWidth   = 7
	maxPathText   = 1024 // bytes of path shown in a line
	timeLayout    = "15:04:05.000000"
)

// lineRenderer writes `TIME SRC → DST PROTO METHOD PATH STATUS LATENCY`,
// and with wide, sizes, flow, node, TLS and error after it.
type lineRenderer struct {
	wide, color, headers bool
	loc                  *time.Location
}

func (r *lineRenderer) Header(dst []byte) []byte {
	if !r.headers {
		return dst
	}
	dst = pad(append(dst, "TIME"...), len("TIME"), len(timeLayout)+1)
	dst = pad(append(dst, "SRC"...), len("SRC"), endpointWidth)
	dst = pad(append(dst, "   DST"...), len("DST"), endpointWidth+1)
	dst = pad(append(dst, "PROTO"...), len("PROTO"), protoWidth+1)
	dst = pad(append(dst, "METHOD"...), len("METHOD"), methodWidth+1)
	dst = append(dst, "PATH STATUS LATENCY"...)
	if r.wide {
		dst = append(dst, " DETAILS"...)
	}
	return append(dst, '\n')
}

func (r *lineRenderer) Append(dst []byte, e *entry.Entry) []byte {
	dst = r.open(dst, ansiDim)
	dst = e.TS.In(r.loc).AppendFormat(dst, timeLayout)
	dst = r.close(dst, ansiDim)
	dst = r.endpoint(append(dst, ' '), &e.Src)
	dst = r.endpoint(append(dst, " → "...), &e.Dst)
	dst = append(dst, ' ')
	dst = pad(appendUpper(dst, e.Proto), len(e.Proto), protoWidth+1)
	method := orDash(e.Method)
	start := len(dst)
	dst = appendSafe(dst, method, maxPathText)
	dst = pad(dst, utf8.RuneCount(dst[start:]), methodWidth+1)
	dst = appendSafe(dst, orDash(e.Path), maxPathText)
	color := statusColor(e)
	dst = r.open(append(dst, ' '), color)
	dst = appendSafe(dst, orDash(e.Status), maxPathText)
	dst = r.close(dst, color)
	dst = appendLatency(append(dst, ' '), e)
	if r.wide {
		dst = r.details(dst, e)
	}
	return append(dst, '\n')
}

// details appends the wide columns as key=value words.
func (r *lineRenderer) details(dst []byte, e *entry.Entry) []byte {
	dst = appendSize(append(dst, " req="...), e.Size.Request)
	dst = appendSize(append(dst, " resp="...), e.Size.Response)
	if e.FlowID != "" {
		dst = appendSafe(append(dst, " flow="...), e.FlowID, maxPathText)
	}
	if e.Node != "" {
		dst = appendSafe(append(dst, " node="...), e.Node, maxPathText)
	}
	if e.TLS {
		dst = append(dst, " tls"...)
		if e.Source == entry.SourceEBPFTLS {
			dst = append(dst, "=ebpf"...)
		}
	}
	if e.Error != "" {
		dst = r.open(append(dst, ' '), ansiRed)
		dst = appendSafe(append(dst, `error="`...), e.Error, maxPathText)
		dst = r.close(append(dst, '"'), ansiRed)
	}
	return dst
}

// endpoint appends the endpoint in its column, in the pod's color when the
// pod is known.
func (r *lineRenderer) endpoint(dst []byte, p *entry.Endpoint) []byte {
	color := ""
	if p.Pod != "" {
		color = podColor(p.Namespace, p.Pod)
	}
	dst = r.open(dst, color)
	start := len(dst)
	dst = appendEndpointText(dst, p)
	n := utf8.RuneCount(dst[start:])
	return pad(r.close(dst, color), n, endpointWidth)
}

// appendEndpointText appends namespace/pod:port when the pod is known,
// namespace/svc/name:port for a Service's address, node/name:port for a
// node's, and ip:port otherwise.
func appendEndpointText(dst []byte, p *entry.Endpoint) []byte {
	switch {
	case p.Pod != "":
	case p.Service != "":
		if p.Namespace != "" {
			dst = append(appendSafe(dst, p.Namespace, maxPathText), '/')
		}
		dst = appendSafe(append(dst, "svc/"...), p.Service, maxPathText)
		return strconv.AppendInt(append(dst, ':'), int64(p.Port), 10)
	case p.Node != "" && p.Namespace == "":
		dst = appendSafe(append(dst, "node/"...), p.Node, maxPathText)
		return strconv.AppendInt(append(dst, ':'), int64(p.Port), 10)
	default:
		return appendHostPort(dst, p.IP, p.Port)
	}
	if p.Namespace != "" {
		dst = append(appendSafe(dst, p.Namespace, maxPathText), '/')
	}
	dst = appendSafe(dst, p.Pod, maxPathText)
	return strconv.AppendInt(append(dst, ':'), int64(p.Port), 10)
}

func appendHostPort(dst []byte, ip string, port int) []byte {
	if strings.IndexByte(ip, ':') >= 0 {
		dst = append(append(append(dst, '['), ip...), ']')
	} else {
		dst = appendSafe(dst, orDash(ip), maxPathText)
	}
	return strconv.AppendInt(append(dst, ':'), int64(port), 10)
}

func (r *lineRenderer) open(dst []byte, color string) []byte {
	if r.color && color != "" {
		dst = append(dst, color...)
	}
	return dst
}

func (r *lineRenderer) close(dst []byte, color string) []byte {
	if r.color && color != "" {
		dst = append(dst, ansiReset...)
	}
	return dst
}

// pad appends spaces after a value n columns wide up to width, and always
// at least one.
func pad(dst []byte, n, width int) []byte {
	for dst = append(dst, ' '); n+1 < width; n++ {
		dst = append(dst, ' ')
	}
	return dst
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appendUpper(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}

// appendSafe appends at most max bytes of s with control characters
// (C0, DEL, C1) and invalid UTF-8 escaped, so that bytes from the wire
// can never move the cursor or inject terminal sequences.
func appendSafe(dst []byte, s string, max int) []byte {
	cut := len(s) > max
	if cut {
		s = s[:max]
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b >= ' ' && b < 0x7F {
			dst = append(dst, b)
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size <= 1, c < ' ', c == 0x7F:
			dst = append(dst, '\\', 'x', hexDigits[b>>4], hexDigits[b&0xF])
			size = 1
		case c >= 0x80 && c < 0xA0:
			dst = append(dst, `\u00`...)
			dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	if cut {
		dst = append(dst, "…"...)
	}
	return dst
}

// appendLatency appends the elapsed time with three significant digits
// (850µs, 1.23ms, 12.3ms, 123ms, 1.23s), or "-" when no response came.
func appendLatency(dst []byte, e *entry.Entry) []byte {
	us := e.ElapsedUS
	if us <= 0 && e.Error != "" {
		return append(dst, '-')
	}
	switch {
	case us < 1000:
		return append(strconv.AppendInt(dst, max(us, 0), 10), "µs"...)
	case us < 1_000_000:
		return append(appendSig3(dst, us), "ms"...)
	}
	return append(appendSig3(dst, us/1000), 's')
}

// appendSig3 appends v/1000 with three significant digits, for v >= 1000.
func appendSig3(dst []byte, v int64) []byte {
	switch {
	case v < 10_000: // 1.23
		return appendFixed(dst, v/10, 2)
	case v < 100_000: // 12.3
		return appendFixed(dst, v/100, 1)
	}
	return strconv.AppendInt(dst, v/1000, 10)
}

// appendFixed appends n with the last decimals digits after a point.
func appendFixed(dst []byte, n int64, decimals int) []byte {
	var pow int64 = 1
	for range decimals {
		pow *= 10
	}
	dst = append(strconv.AppendInt(dst, n/pow, 10), '.')
	for frac := n % pow; pow > 1; {
		pow /= 10
		dst = append(dst, byte('0'+frac/pow%10))
	}
	return dst
}

// appendSize appends a byte count in binary units: 512B, 1.5KiB, 3.2MiB.
func appendSize(dst []byte, n int64) []byte {
	const units = "KMGTPE"
	if n < 1024 {
		return append(strconv.AppendInt(dst, n, 10), 'B')
	}
	div, exp := int64(1024), 0
	for v := n / 1024; v >= 1024 && exp < len(units)-1; v /= 1024 {
		div *= 1024
		exp++
	}
	tenths := n * 10 / div
	if n > 1<<50 { // avoid overflow of n*10
		tenths = n / (div / 10)
	}
	dst = strconv.AppendInt(dst, tenths/10, 10)
	if tenths < 100 {
		dst = append(append(dst, '.'), byte('0'+tenths%10))
	}
	return append(append(dst, units[exp]), "iB"...)
}
