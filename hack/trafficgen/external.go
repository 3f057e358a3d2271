package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// curlRun is one curl invocation: options, then paths fetched in order on
// the connections curl keeps alive.
type curlRun struct {
	opts  []string
	paths []string
}

const jsonType = "Content-Type: application/json"

// curlPlans are the curl invocations per -mode. curl brings a second
// client implementation: its own header order, HTTP/1.0, Expect-free
// uploads, and its own Upgrade: h2c.
var curlPlans = map[string][]curlRun{
	"http1": {
		{nil, []string{"/api/items", "/api/items/1", "/api/items/999"}},
		{[]string{"-I"}, []string{"/api/items"}},
		{[]string{"-X", "POST", "-H", jsonType, "-d", `{"sku":"sku-5","name":"scale"}`}, []string{"/api/items"}},
		{[]string{"-X", "PUT", "-H", jsonType, "-d", `{"name":"jug"}`}, []string{"/api/items/7"}},
		{[]string{"-X", "DELETE", "-H", "Authorization: " + demoBearer}, []string{"/api/items/2"}},
		{[]string{"-H", "If-None-Match: " + itemsETag}, []string{"/api/etag"}},
		{nil, []string{"/old", "/api/fail"}},
		{nil, []string{"/stream?chunks=4"}},
		{[]string{"--compressed"}, []string{"/gzip"}},
		{[]string{"-b", demoCookie}, []string{"/healthz"}},
		{[]string{"--http1.0"}, []string{"/api/items"}},
	},
	"h2": {
		// One URL per prior-knowledge run: curl 7.88 fails to reuse such
		// a connection ("Error in the HTTP2 framing layer").
		{[]string{"--http2-prior-knowledge"}, []string{"/api/items"}},
		{[]string{"--http2-prior-knowledge"}, []string{"/api/items/42"}},
		{[]string{"--http2-prior-knowledge"}, []string{"/nope"}},
		{[]string{"--http2-prior-knowledge", "-I"}, []string{"/api/items"}},
		{[]string{"--http2-prior-knowledge", "-X", "POST", "-H", jsonType, "-d", `{"sku":"sku-6"}`}, []string{"/api/items"}},
		{[]string{"--http2-prior-knowledge", "--compressed"}, []string{"/gzip"}},
		{[]string{"--http2-prior-knowledge"}, []string{"/stream?chunks=4"}},
		// Upgrade: h2c on the first request, then HTTP/2 on the same
		// connection.
		{[]string{"--http2"}, []string{"/api/items", "/api/etag"}},
	},
}

// curlFormat is written after each transfer; fields are tab separated.
const curlFormat = `%{method}\t%{url_effective}\t%{response_code}\t%{http_version}\t%{num_connects}\n`

func runCurlClient(ctx context.Context, args []string) error {
	fs := newFlagSet("curl-client")
	var cf clientFlags
	cf.register(fs, 0, 1)
	mode := fs.String("mode", "http1", "plan: http1 or h2 (prior knowledge and Upgrade)")
	rawURL := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	plan, ok := curlPlans[*mode]
	if !ok {
		return fmt.Errorf("-mode %q: want http1 or h2", *mode)
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	base := strings.TrimSuffix(*rawURL, "/")
	var rec recorder
	for _, run := range plan {
		if err := curl(ctx, base, run, &rec); err != nil {
			return err
		}
	}
	return rec.save(cf.log)
}

func curl(ctx context.Context, base string, run curlRun, rec *recorder) error {
	args := append([]string{"-sS", "--max-time", "20", "-w", curlFormat}, run.opts...)
	for _, p := range run.paths {
		args = append(args, "-o", "/dev/null", base+p)
	}
	out, err := exec.CommandContext(ctx, "curl", args...).Output()
	if err != nil {
		return fmt.Errorf("curl %s: %w", strings.Join(args, " "), err)
	}
	upgrade := slices.Contains(run.opts, "--http2")
	sc := bufio.NewScanner(bytes.NewReader(out))
	seen := 0
	for sc.Scan() {
		if err := recordCurl(sc.Text(), upgrade, rec); err != nil {
			return err
		}
		seen++
	}
	if seen != len(run.paths) {
		return fmt.Errorf("curl %v: %d transfers reported, want %d", run.paths, seen, len(run.paths))
	}
	return nil
}

// recordCurl logs one -w line. A transfer over HTTP/2 that opened its own
// connection without prior knowledge was an Upgrade: its request went as
// HTTP/1.1 (answered 101) and its response on stream 1.
func recordCurl(line string, upgrade bool, rec *recorder) error {
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		return fmt.Errorf("curl: bad -w line %q", line)
	}
	u, err := url.Parse(f[1])
	if err != nil {
		return err
	}
	code, err := strconv.Atoi(f[2])
	if err != nil || code == 0 {
		return fmt.Errorf("curl %s: no response", f[1])
	}
	method, target := f[0], u.RequestURI()
	switch {
	case f[3] != "2":
		rec.http1(method, target, code)
	case upgrade && f[4] == "1":
		rec.http1(method, target, 101)
		rec.http2ResponseOnly()
	default:
		rec.http2(method, target, code)
	}
	return nil
}

// digQuery is one dig invocation of the plan.
type digQuery struct {
	name, qtype string
	tcp         bool
}

// digPlan asks dnsmasq for each record type hack/record-testdata.sh
// configures, over UDP and TCP, plus an NXDOMAIN.
var digPlan = []digQuery{
	{"shop.shark.test", "A", false},
	{"api.shark.test", "AAAA", false},
	{"shark.test", "MX", false},
	{"shark.test", "TXT", false},
	{"_http._tcp.shark.test", "SRV", false},
	{"missing.shark.test", "A", false},
	{"shop.shark.test", "A", true},
	{"shark.test", "MX", true},
	{"missing.shark.test", "AAAA", true},
}

func runDigClient(ctx context.Context, args []string) error {
	fs := newFlagSet("dig-client")
	var cf clientFlags
	cf.register(fs, len(digPlan), 1)
	server := fs.String("server", "127.0.0.1", "DNS server IP")
	port := fs.Int("port", 53, "DNS server port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	var rec recorder
	for i := range cf.n {
		q := digPlan[i%len(digPlan)]
		rcode, err := dig(ctx, *server, *port, q)
		if err != nil {
			return err
		}
		rec.dns(q.qtype, rcode)
	}
	return rec.save(cf.log)
}

// dig runs one query, with no retries so each query is sent once, and
// returns the response's status as dig prints it ("NOERROR").
func dig(ctx context.Context, server string, port int, q digQuery) (string, error) {
	args := []string{"@" + server, "-p", strconv.Itoa(port), "+tries=1", "+time=3", q.name, q.qtype}
	if q.tcp {
		args = append(args, "+tcp")
	}
	out, err := exec.CommandContext(ctx, "dig", args...).Output()
	if err != nil {
		return "", fmt.Errorf("dig %s: %w", strings.Join(args, " "), err)
	}
	// ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 4242"
	const key = "status: "
	i := bytes.Index(out, []byte(key))
	if i < 0 {
		return "", fmt.Errorf("dig %s: no status in output", strings.Join(args, " "))
	}
	rest := out[i+len(key):]
	if j := bytes.IndexByte(rest, ','); j >= 0 {
		rest = rest[:j]
	}
	return string(rest), nil
}
