package filter

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var ts0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func httpEntry() *entry.Entry {
	return &entry.Entry{
		V: 1, ID: "e1", TS: ts0, ElapsedUS: 250_000, Proto: "http", Method: "GET", Path: "/api/items", Status: "503",
		Src:  entry.Endpoint{IP: "10.0.0.1", Port: 40000, Pod: "frontend-abc", Namespace: "shop"},
		Dst:  entry.Endpoint{IP: "10.0.0.2", Port: 8080, Pod: "cart-0", Namespace: "shop", Service: "cart"},
		Size: entry.Size{Request: 120, Response: 4096}, Source: "af_packet", FlowID: "f1",
		HTTP: &entry.HTTP{Version: "1.1",
			Request: &entry.HTTPRequest{Method: "GET", Target: "/api/items",
				Headers: map[string]string{"content-type": "application/json", "x-id": "7"}},
			Response: &entry.HTTPResponse{Status: 503, Body: entry.Body{Size: 10, Data: "overloaded"}},
		},
	}
}

func notFoundEntry() *entry.Entry {
	e := httpEntry()
	e.Status, e.ElapsedUS = "404", 900
	e.HTTP.Response = &entry.HTTPResponse{Status: 404}
	return e
}

func noResponseEntry() *entry.Entry {
	e := httpEntry()
	e.Status, e.Error, e.ElapsedUS = "", "no response", 0
	e.HTTP.Response = nil
	return e
}

func dnsEntry() *entry.Entry {
	return &entry.Entry{
		V: 1, ID: "e2", TS: ts0.Add(time.Hour), ElapsedUS: 800, Proto: "dns", Method: "A", Path: "cart.shop.svc.cluster.local", Status: "NXDOMAIN",
		Src: entry.Endpoint{IP: "10.0.0.1", Port: 5353}, Dst: entry.Endpoint{IP: "10.96.0.10", Port: 53},
		DNS: &entry.DNS{ID: 4660, Transport: "udp", QName: "cart.shop.svc.cluster.local", QType: "A", RCode: "NXDOMAIN",
			Flags: []string{"rd", "ra"}, Answers: []entry.DNSRecord{{Name: "x", Type: "A", TTL: 30, Data: "10.1.2.3"}}},
	}
}

func redisEntry() *entry.Entry {
	return &entry.Entry{V: 1, Proto: "redis", Method: "GET", Path: "session:1", Status: "OK",
		Redis: &entry.Redis{Command: "GET", Args: []string{"session:1"}}}
}

func postgresEntry() *entry.Entry {
	return &entry.Entry{V: 1, Proto: "postgres", Method: "SELECT", Status: "ERROR",
		Postgres: &entry.Postgres{Query: "select 1", Error: "relation does not exist", Rows: 0}}
}

func grpcEntry() *entry.Entry {
	return &entry.Entry{V: 1, Proto: "grpc", Status: "NOT_FOUND", TLS: true,
		GRPC: &entry.GRPC{Service: "shop.Cart", Method: "Get", Code: 5, Status: "NOT_FOUND",
			Messages: []entry.GRPCMessage{{Dir: "request", Size: 12}}}}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		expr string
		e    *entry.Entry
		want bool
	}{
		{``, dnsEntry(), true},
		{`  `, httpEntry(), true},
		{`proto == "http" && int(status) >= 500`, httpEntry(), true},
		{`proto == "http" && int(status) >= 500`, notFoundEntry(), false},
		{`int(status) >= 500`, dnsEntry(), false}, // int("NXDOMAIN") fails: false
		{`src.pod.startsWith("front")`, httpEntry(), true},
		{`src.pod.startsWith("front")`, dnsEntry(), false},
		{`src.pod == ""`, dnsEntry(), true}, // endpoint fields are always there
		{`dst.service == "cart" && dst.port == 8080`, httpEntry(), true},
		{`src.namespace in ["shop", "pay"]`, httpEntry(), true},
		{`dns.qname.endsWith(".cluster.local")`, dnsEntry(), true},
		{`dns.qname.endsWith(".cluster.local")`, httpEntry(), false},
		{`!dns.qname.endsWith(".cluster.local")`, httpEntry(), false}, // an error stays false
		{`dns.id == 4660 && dns.answers[0].ttl > 10`, dnsEntry(), true},
		{`dns.answers.exists(a, a.type == "A" && a.data == "10.1.2.3")`, dnsEntry(), true},
		{`"ra" in dns.flags`, dnsEntry(), true},
		{`elapsed_us > 100000`, httpEntry(), true},
		{`elapsed_us > 100000`, dnsEntry(), false},
		{`http.request.headers["content-type"].contains("json")`, httpEntry(), true},
		{`http.request.headers["accept"].contains("json")`, httpEntry(), false},
		{`"x-id" in http.request.headers`, httpEntry(), true},
		{`redis.command == "GET"`, redisEntry(), true},
		{`redis.command == "GET"`, httpEntry(), false},
		{`redis.args.size() == 1`, redisEntry(), true},
		{`postgres.error != ""`, postgresEntry(), true},
		{`postgres.error != ""`, redisEntry(), false},
		{`has(http.response) && http.response.status == 404`, notFoundEntry(), true},
		{`has(http.response) && http.response.status == 404`, httpEntry(), false},
		{`has(http.response) && http.response.status == 404`, noResponseEntry(), false},
		{`!has(http.response)`, noResponseEntry(), true},
		{`error == "no response"`, noResponseEntry(), true},
		{`error == ""`, httpEntry(), true},
		{`http.response.body.data.contains("overload")`, httpEntry(), true},
		{`size.response >= 4096 && size.request < 1000`, httpEntry(), true},
		{`ts > timestamp("2025-03-01T12:30:00Z")`, dnsEntry(), true},
		{`ts > timestamp("2025-03-01T12:30:00Z")`, httpEntry(), false},
		{`tls && grpc.code == 5 && grpc.messages[0].dir == "request"`, grpcEntry(), true},
		{`grpc.status != "OK"`, grpcEntry(), true},
		{`size(http) > 0`, httpEntry(), true},
		{`size(http) == 0`, dnsEntry(), true},
		{`has(dns.qname)`, httpEntry(), false},
		{`proto.upperAscii() == "DNS"`, dnsEntry(), true}, // ext.Strings
		{`http.response.status == 503.0`, httpEntry(), true},
		{`dyn(status) == 503`, httpEntry(), false}, // a string is not a number
		{`id == "e1" && v == 1 && source == "af_packet" && flow_id == "f1" && node == "" && worker == ""`, httpEntry(), true},
		{`conn.transport == "tcp"`, httpEntry(), false},
		{`kafka.api == "" || amqp.queue == "" || mysql.query == "" || graphql.name == "" || websocket.dir == "" || tls_hello.sni == ""`, httpEntry(), false},
	}
	for _, tt := range tests {
		f, err := Compile(tt.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.expr, err)
			continue
		}
		if got := f.Match(tt.e); got != tt.want {
			t.Errorf("%q on %s entry = %v, want %v", tt.expr, tt.e.Proto, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		expr, want, caret string
	}{
		{`proto == "http" && stauts == "500"`, `filter: 1:20: undeclared reference to 'stauts'`,
			"1:20: undeclared reference to 'stauts'\n  | proto == \"http\" && stauts == \"500\"\n  |                    ^"},
		{`proto ==`, `filter: 1:9: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`, ""},
		{`elapsed_us + 1`, `filter: 1:1: expression must be a bool, not int`, ""},
		{`proto == 5`, `filter: 1:7: found no matching overload for '_==_' applied to '(string, int)'`, ""},
		{"proto == \"http\" &&\n  nope", `filter: 2:3: undeclared reference to 'nope'`,
			"2:3: undeclared reference to 'nope'\n  |   nope\n  |   ^"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Compile(%q) = %v, want *Error", tt.expr, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Compile(%q):\n got %s\nwant %s", tt.expr, err, tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("multi-line error %q", err)
		}
		if tt.caret != "" && fe.Caret() != tt.caret {
			t.Errorf("Caret:\n%s\nwant\n%s", fe.Caret(), tt.caret)
		}
	}
}

func TestUnion(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{`proto == "dns"`}, `proto == "dns"`},
		{[]string{`proto == "dns"`, ` proto == "dns" `, `int(status) >= 500`}, `(proto == "dns") || (int(status) >= 500)`},
		{[]string{`proto == "dns"`, ""}, ""},
		{[]string{`a || b`, `c`}, `(a || b) || (c)`},
	}
	for _, tt := range tests {
		if got := Union(tt.in...); got != tt.want {
			t.Errorf("Union(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	u := MustCompile(Union(`proto == "dns"`, `int(status) >= 500`))
	for _, e := range []*entry.Entry{dnsEntry(), httpEntry()} {
		if !u.Match(e) {
			t.Errorf("union misses %s entry", e.Proto)
		}
	}
	if u.Match(notFoundEntry()) {
		t.Error("union matches a 404")
	}
}

// TestVariablesCoverEntry keeps the declarations in step with pkg/entry:
// every JSON field of Entry is a variable, and every nested type converts.
func TestVariablesCoverEntry(t *testing.T) {
	var declared []string
	for _, v := range variables {
		declared = append(declared, v.name)
	}
	if diff := cmp.Diff(entryInfo.names, declared); diff != "" {
		t.Errorf("variables differ from entry.Entry fields (-entry +declared):\n%s", diff)
	}
	// Building the info of every reachable type panics on an unsupported field.
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt == timeType || seen[rt] {
			return
		}
		seen[rt] = true
		infoOf(rt)
		for i := 0; i < rt.NumField(); i++ {
			walk(rt.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[entry.Entry]())
}

func TestEmptyEntry(t *testing.T) {
	for _, v := range variables {
		f := MustCompile(v.name + ` == ` + v.name)
		f.Match(&entry.Entry{}) // must not panic
	}
}

func TestConcurrentMatch(t *testing.T) {
	f := MustCompile(`proto == "http" && src.pod.startsWith("front") && http.request.headers["x-id"] == "7"`)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				if !f.Match(httpEntry()) || f.Match(dnsEntry()) {
					t.Error("wrong match")
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkMatch(b *testing.B) {
	benches := []struct{ name, expr string }{
		{"scalar", `proto == "http" && int(status) >= 500`},
		{"endpoint", `src.pod.startsWith("front")`},
		{"header", `http.request.headers["content-type"].contains("json")`},
		{"other-proto", `dns.qname.endsWith(".cluster.local")`},
	}
	e := httpEntry()
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			f := MustCompile(bb.expr)
			b.ReportAllocs()
			for b.Loop() {
				f.Match(e)
			}
		})
	}
}
