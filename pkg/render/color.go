package render

import (
	"strconv"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// ANSI SGR sequences.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiPurple = "\x1b[35m"
	ansiCyan   = "\x1b[36m"
	ansiBold   = "\x1b[1m"
)

// podPalette holds 256-color foregrounds that read well on dark and light
// backgrounds; reds are left out so that a pod never looks like an error.
var podPalette = [...]string{
	"\x1b[38;5;33m", "\x1b[38;5;37m", "\x1b[38;5;71m", "\x1b[38;5;75m",
	"\x1b[38;5;108m", "\x1b[38;5;135m", "\x1b[38;5;141m", "\x1b[38;5;166m",
	"\x1b[38;5;172m", "\x1b[38;5;178m", "\x1b[38;5;69m", "\x1b[38;5;104m",
}

// podColor returns a color that stays the same for a pod across runs and
// machines: FNV-1a of "namespace/pod" picks it from the palette.
func podColor(namespace, pod string) string {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(namespace); i++ {
		h = (h ^ uint32(namespace[i])) * prime
	}
	h = (h ^ '/') * prime
	for i := 0; i < len(pod); i++ {
		h = (h ^ uint32(pod[i])) * prime
	}
	return podPalette[h%uint32(len(podPalette))]
}

// statusColor returns the color of an entry's status: by class for HTTP,
// OK or not for gRPC, NOERROR/NXDOMAIN/other for DNS, red for errors.
func statusColor(e *entry.Entry) string {
	if e.Status == "" {
		if e.Error != "" {
			return ansiRed
		}
		return ""
	}
	switch e.Proto {
	case entry.ProtoHTTP, entry.ProtoHTTP2, entry.ProtoGraphQL, entry.ProtoWS:
		return httpColor(e.Status)
	case entry.ProtoGRPC:
		if e.Status == "OK" {
			return ansiGreen
		}
		return ansiRed
	case entry.ProtoDNS:
		switch e.Status {
		case "NOERROR":
			return ansiGreen
		case "NXDOMAIN":
			return ansiYellow
		}
		return ansiRed
	}
	if e.Error != "" {
		return ansiRed
	}
	return ""
}

func httpColor(status string) string {
	code, err := strconv.Atoi(status)
	if err != nil {
		return ""
	}
	switch code / 100 {
	case 2:
		return ansiGreen
	case 3:
		return ansiCyan
	case 4:
		return ansiYellow
	case 5:
		return ansiRed
	}
	return ""
}

// namedColors are the names the template func color accepts.
var namedColors = map[string]string{
	"red": ansiRed, "green": ansiGreen, "yellow": ansiYellow, "blue": ansiBlue,
	"magenta": ansiPurple, "cyan": ansiCyan, "bold": ansiBold, "dim": ansiDim,
}
