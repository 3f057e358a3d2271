package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// redisStats turns two dumps of redis-server's INFO commandstats (taken
// over its unix socket, which the capture does not see) into the commands
// the server ran between them, named as the dissector names them:
// "config|get" becomes "CONFIG GET". Rejected calls (wrong arity, unknown
// subcommand) count too: they crossed the wire.
func redisStats(args []string) error {
	fs := flag.NewFlagSet("redis-stats", flag.ExitOnError)
	before := fs.String("before", "", "INFO commandstats before")
	after := fs.String("after", "", "INFO commandstats after")
	out := fs.String("log", "", "write counts here")
	fs.Parse(args)
	b, err := commandStats(*before)
	if err != nil {
		return err
	}
	a, err := commandStats(*after)
	if err != nil {
		return err
	}
	// The INFO that dumped before ran over the socket, and counts in after.
	b["INFO"]++
	c := counts{}
	for name, n := range a {
		if d := n - b[name]; d > 0 {
			c.add(d, "redis", "commands", name)
		}
	}
	return c.write(*out)
}

// commandStats parses lines such as
// cmdstat_config|get:calls=2,usec=30,usec_per_call=15.00,rejected_calls=0,failed_calls=0
func commandStats(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stats := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, fields, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n := 0
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			if k == "calls" || k == "rejected_calls" {
				x, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %q", path, line)
				}
				n += x
			}
		}
		stats[strings.ToUpper(strings.ReplaceAll(name, "|", " "))] = n
	}
	return stats, sc.Err()
}

// pgLine is a line of the server log with log_line_prefix '%e ' (the
// SQLSTATE first) and log_statement=all.
var pgLine = regexp.MustCompile(`^([0-9A-Z]{5}) (LOG|ERROR|FATAL):  (statement|execute [^:]*|.*?)(:|$)`)

// pgLog counts what PostgreSQL logged running the clients' statements:
// simple-protocol Query strings ("statement:"), extended-protocol Executes
// ("execute <name>:"), and errors by SQLSTATE.
func pgLog(args []string) error {
	fs := flag.NewFlagSet("pg-log", flag.ExitOnError)
	in := fs.String("log", "", "server log")
	out := fs.String("out", "", "write counts here")
	fs.Parse(args)
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	c := counts{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := pgLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		switch {
		case m[2] == "LOG" && m[3] == "statement":
			c.add(1, "postgres", "queries")
		case m[2] == "LOG" && strings.HasPrefix(m[3], "execute "):
			c.add(1, "postgres", "executes")
		case m[2] == "ERROR" || m[2] == "FATAL":
			c.add(1, "postgres", "errors", m[1])
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return c.write(*out)
}
