// Package tshark runs Wireshark's tshark as an independent oracle for tests:
// it reads the same capture files as our engine and counts what tshark sees,
// so engine tests can compare their entries against a dissector we did not
// write.
package tshark

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Ports used by hack/trafficgen in the recorded testdata. tshark guesses
// protocols by port, so anything not on a well-known port is decoded
// explicitly.
const (
	PortHTTP         = 8080  // HTTP/1.1 server
	PortH2C          = 8081  // h2c server: prior knowledge and Upgrade: h2c
	PortH2CMidstream = 8082  // h2c server captured mid-connection (no preface)
	PortGRPC         = 50051 // gRPC server (h2c prior knowledge)
)

// Aggregator separates the occurrences of one field within one frame in
// Fields output. tshark accepts only a printable character here; none of
// the values the oracles read (methods, paths, numbers) contain it.
const Aggregator = "|"

// ErrNotInstalled is returned when tshark is not on PATH.
var ErrNotInstalled = errors.New("tshark: not found on PATH")

// Runner holds how tshark is invoked. The zero value is usable; Default
// carries the decode-as rules for the ports trafficgen uses.
type Runner struct {
	// Path of the tshark binary; "tshark" (looked up on PATH) when empty.
	Path string
	// DecodeAs rules passed as -d, e.g. "tcp.port==50051,http2".
	DecodeAs []string
	// Prefs passed as -o name:value, on top of the reassembly preferences
	// every run gets.
	Prefs []string
}

// Default decodes the testdata ports. Port 8081 stays HTTP/1 so tshark
// follows both the Upgrade: h2c handshake and the prior-knowledge preface
// (its HTTP/2 heuristic spots the preface). The midstream and gRPC ports
// never carry HTTP/1, so they are pinned to HTTP/2: a capture that starts
// mid-connection has no preface to detect.
var Default = &Runner{
	DecodeAs: []string{
		fmt.Sprintf("tcp.port==%d,http", PortHTTP),
		fmt.Sprintf("tcp.port==%d,http", PortH2C),
		fmt.Sprintf("tcp.port==%d,http2", PortH2CMidstream),
		fmt.Sprintf("tcp.port==%d,http2", PortGRPC),
	},
}

// reassemblyPrefs make tshark dissect whole messages, not segments, which
// is what our engine does too.
var reassemblyPrefs = []string{
	"tcp.desegment_tcp_streams:TRUE",
	"http.desegment_headers:TRUE",
	"http.desegment_body:TRUE",
	"http.dechunk_body:TRUE",
	"tcp.reassemble_out_of_order:TRUE",
}

// Available reports whether tshark is on PATH.
func Available() bool {
	_, err := exec.LookPath("tshark")
	return err == nil
}

// Fields runs Default.Fields.
func Fields(ctx context.Context, file, displayFilter string, fields ...string) ([][]string, error) {
	return Default.Fields(ctx, file, displayFilter, fields...)
}

// Fields returns one row per frame matching displayFilter (every frame when
// empty), with one column per field. A field that occurs several times in a
// frame (several HTTP/2 frames or pipelined requests in one segment) has
// its values joined by Aggregator; see Split.
func (r *Runner) Fields(ctx context.Context, file, displayFilter string, fields ...string) ([][]string, error) {
	if len(fields) == 0 {
		return nil, errors.New("tshark: Fields needs at least one field")
	}
	args := []string{"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
		"-E", "aggregator=" + Aggregator, "-E", "quote=n", "-E", "header=n"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := r.run(ctx, file, displayFilter, args...)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		row := strings.Split(line, "\t")
		// tshark drops trailing empty columns on some versions; pad them.
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Split returns the occurrences in one Fields cell; nil for an empty cell.
func Split(cell string) []string {
	if cell == "" {
		return nil
	}
	return strings.Split(cell, Aggregator)
}

// run executes tshark on file with the runner's options plus args.
func (r *Runner) run(ctx context.Context, file, displayFilter string, args ...string) ([]byte, error) {
	cmd, stderr, err := r.command(ctx, file, displayFilter, args...)
	if err != nil {
		return nil, err
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tshark %s: %w: %s", strings.Join(cmd.Args[1:], " "), err, errText(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// command builds the tshark command line: reassembly preferences, the
// runner's preferences and decode-as rules, the display filter, then args.
func (r *Runner) command(ctx context.Context, file, displayFilter string, args ...string) (*exec.Cmd, *bytes.Buffer, error) {
	bin := r.Path
	if bin == "" {
		bin = "tshark"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, nil, ErrNotInstalled
	}
	full := []string{"-n", "-r", file}
	for _, p := range reassemblyPrefs {
		full = append(full, "-o", p)
	}
	for _, p := range r.Prefs {
		full = append(full, "-o", p)
	}
	for _, d := range r.DecodeAs {
		full = append(full, "-d", d)
	}
	if displayFilter != "" {
		full = append(full, "-Y", displayFilter)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr, nil
}

// errText is tshark's stderr without the warning it prints when run as
// root, so the reason of a failure comes first.
func errText(stderr string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(l, "Running as user") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
