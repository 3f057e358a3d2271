// Command protogen-b runs the real clients and servers that
// hack/record-protocols-b.sh captures (MySQL/MariaDB, GraphQL over HTTP,
// WebSocket, TLS), and writes what each client did as a log. The logs are
// summed into testdata/<name>.expected.json, which the dissectors' tests
// compare with their entries and with tshark.
//
//	protogen-b mysql-client -dsn DSN -log FILE
//	protogen-b mariadb-log -in CLI_OUTPUT -log FILE
//	protogen-b graphql-server -addr ADDR
//	protogen-b graphql-client -url URL -log FILE
//	protogen-b ws-server -addr ADDR
//	protogen-b ws-client -url URL [-compress] -log FILE
//	protogen-b tls-client -url URL -resolve HOST:PORT:ADDR -log FILE
//	protogen-b merge -o FILE LOG...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Tally is what a client did, per protocol: entries by key (each protocol
// documents its key) and plain counters.
type Tally struct {
	Entries  map[string]int   `json:"entries,omitempty"`
	Counters map[string]int64 `json:"counters,omitempty"`
}

// Log maps a protocol name to its tally.
type Log map[string]*Tally

func (l Log) tally(proto string) *Tally {
	t := l[proto]
	if t == nil {
		t = &Tally{Entries: map[string]int{}, Counters: map[string]int64{}}
		l[proto] = t
	}
	return t
}

// entry counts one entry under the key made of the non-empty parts.
func (l Log) entry(proto string, parts ...string) {
	key := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			key = append(key, p)
		}
	}
	l.tally(proto).Entries[strings.Join(key, " ")]++
}

func (l Log) count(proto, name string, n int64) { l.tally(proto).Counters[name] += n }

// add sums o into l.
func (l Log) add(o Log) {
	for proto, t := range o {
		dst := l.tally(proto)
		for k, v := range t.Entries {
			dst.Entries[k] += v
		}
		for k, v := range t.Counters {
			dst.Counters[k] += v
		}
	}
}

func (l Log) write(path string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readLog(path string) (Log, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l Log
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

var commands = map[string]func(args []string) error{
	"mysql-client":   mysqlClient,
	"mariadb-log":    mariadbLog,
	"graphql-server": graphqlServer,
	"graphql-client": graphqlClient,
	"ws-server":      wsServer,
	"ws-client":      wsClient,
	"tls-client":     tlsClient,
	"merge":          merge,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: protogen-b %s ...\n", strings.Join(names, "|"))
		os.Exit(2)
	}
	if err := commands[os.Args[1]](os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "protogen-b %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// merge sums logs into one file.
func merge(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	out := fs.String("o", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("need -o and at least one log")
	}
	sum := Log{}
	for _, path := range fs.Args() {
		l, err := readLog(path)
		if err != nil {
			return err
		}
		sum.add(l)
	}
	return sum.write(*out)
}
