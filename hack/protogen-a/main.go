// Command protogen-a runs the servers and clients that
// hack/record-protocols-a.sh records for the Redis, Kafka, AMQP and
// PostgreSQL testdata, and turns what the clients and servers logged into
// testdata/<name>.expected.json.
//
//	protogen-a kafka-broker -addr 127.0.0.1:9092 -duration 10m
//	protogen-a kafka-client -brokers 127.0.0.1:9092 -n 40 -log out.json
//	protogen-a amqp-client -url amqp://guest:guest@127.0.0.1:5672/ -n 20 -log out.json
//	protogen-a redis-stats -before a.txt -after b.txt -log out.json
//	protogen-a pg-log -log server.log -out out.json
//	protogen-a merge -o expected.json in1.json in2.json ...
//
// Every log is a JSON object of nested counts; merge sums them.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: protogen-a kafka-broker|kafka-client|amqp-client|redis-stats|pg-log|merge [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"kafka-broker": kafkaBroker,
		"kafka-client": kafkaClient,
		"amqp-client":  amqpClient,
		"redis-stats":  redisStats,
		"pg-log":       pgLog,
		"merge":        merge,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "protogen-a: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "protogen-a %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// counts is a log: nested maps whose leaves are counts.
type counts map[string]any

// add adds n at the path of keys.
func (c counts) add(n int, path ...string) {
	m := c
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(counts)
		if !ok {
			next = counts{}
			m[k] = next
		}
		m = next
	}
	last := path[len(path)-1]
	v, _ := m[last].(int)
	m[last] = v + n
}

// write writes c as indented JSON with sorted keys.
func (c counts) write(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// sum adds the counts of a decoded JSON object into c.
func (c counts) sum(v map[string]any, path ...string) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := append(append([]string(nil), path...), k)
		switch x := v[k].(type) {
		case float64:
			c.add(int(x), p...)
		case map[string]any:
			if err := c.sum(x, p...); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%v: not a count: %v", p, x)
		}
	}
	return nil
}

// merge sums logs into one expected-counts file.
func merge(args []string) error {
	if len(args) < 2 || args[0] != "-o" {
		return fmt.Errorf("usage: merge -o OUT IN...")
	}
	out := counts{}
	for _, in := range args[2:] {
		b, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		if err := out.sum(v); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	}
	return out.write(args[1])
}
