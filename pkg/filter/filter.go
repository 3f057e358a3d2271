// Package filter compiles CEL (github.com/google/cel-go) expressions and
// matches them against entries.
//
// Variables, named after the entry's JSON form (see README.md for the
// table):
//
//	v            int        schema version
//	id           string     entry id
//	ts           timestamp  request start
//	elapsed_us   int        request start to response end, in µs
//	proto        string     http, http2, grpc, graphql, dns, redis, kafka, ...
//	method       string     the protocol's operation (GET, A, SELECT, ...)
//	path         string     the protocol's target (/api, qname, topic, ...)
//	status       string     the protocol's result ("200", "NOERROR", "OK", ...)
//	src, dst     map        ip, port, pod, namespace, node, service, workload,
//	                        pid, process (the TLS tracer's process at that end)
//	size         map        request, response (bytes on the wire)
//	tls          bool       the bytes were TLS-decrypted or TLS-wrapped
//	source       string     file, af_packet, ebpf_tls
//	node         string     node of the capture
//	worker       string     worker pod of the capture
//	flow_id      string     connection id
//	error        string     why the exchange is incomplete; "" when all is well
//	http, grpc, dns, conn, redis, kafka, amqp, postgres, mysql, graphql,
//	websocket, tls_hello     map   the protocol's object, by JSON names
//
// Within an object, scalar fields are always there (zero when empty);
// nested objects, lists and maps only when set, so has(http.response)
// tells whether a response was seen. The object of a protocol the entry
// is not has no fields at all: dns.qname.endsWith(".local") is simply
// false on an HTTP entry. Any evaluation error (a missing key, int("OK"))
// makes Match false.
package filter

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Filter is a compiled expression. It is safe for concurrent use.
type Filter struct {
	expr string
	prg  cel.Program // nil matches everything
}

// Compile compiles expr. An empty (or blank) expression matches every
// entry. The error, an *Error, is one line with the position of each
// problem, e.g. `filter: 1:18: undeclared reference to 'stauts'`.
func Compile(expr string) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return &Filter{expr: expr}, nil
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, newError(expr, iss)
	}
	if t := ast.OutputType(); t != types.BoolType && t != types.DynType {
		return nil, &Error{Expr: expr, Issues: []Issue{{Line: 1, Column: 1,
			Message: fmt.Sprintf("expression must be a bool, not %s", t)}}}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &Error{Expr: expr, Issues: []Issue{{Line: 1, Column: 1, Message: err.Error()}}}
	}
	return &Filter{expr: expr, prg: prg}, nil
}

// MustCompile is Compile for expressions known to be valid; it panics
// otherwise.
func MustCompile(expr string) *Filter {
	f, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return f
}

// String returns the source expression.
func (f *Filter) String() string { return f.expr }

// MatchAll reports whether the filter matches every entry (it is empty).
func (f *Filter) MatchAll() bool { return f.prg == nil }

// Match reports whether e satisfies the filter. An evaluation error or a
// non-bool result is false.
func (f *Filter) Match(e *entry.Entry) bool {
	if f.prg == nil {
		return true
	}
	out, _, err := f.prg.Eval(&activation{e: e})
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

// Union returns the OR of filters, for pushing the filters of many
// subscribers down to one source. An empty filter matches everything, so
// when any filter is empty, so is the union; duplicates are dropped.
func Union(filters ...string) string {
	var parts []string
	seen := make(map[string]bool, len(filters))
	for _, f := range filters {
		f = strings.TrimSpace(f)
		if f == "" {
			return ""
		}
		if !seen[f] {
			seen[f] = true
			parts = append(parts, f)
		}
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return "(" + strings.Join(parts, ") || (") + ")"
}

// activation resolves the variables of an expression from an entry, only
// those the expression reads and only when it reads them.
type activation struct {
	e    *entry.Entry
	root object // the entry itself, set up on first use
}

func (a *activation) ResolveName(name string) (any, bool) {
	if a.root.info == nil {
		a.root = object{v: reflectEntry(a.e), info: entryInfo}
	}
	return a.root.field(name, true)
}

func (a *activation) Parent() interpreter.Activation { return nil }

// env declares every variable; it is shared by all filters.
var env = func() *cel.Env {
	opts := []cel.EnvOption{
		cel.CustomTypeAdapter(adapter),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
	}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		panic(err)
	}
	return e
}()

var (
	dynMap = cel.MapType(cel.StringType, cel.DynType)
	intMap = cel.MapType(cel.StringType, cel.IntType)
)

// variables are the declared names and types; the test checks they cover
// every field of entry.Entry.
var variables = []struct {
	name string
	typ  *cel.Type
}{
	{"v", cel.IntType}, {"id", cel.StringType}, {"ts", cel.TimestampType},
	{"elapsed_us", cel.IntType}, {"proto", cel.StringType}, {"method", cel.StringType},
	{"path", cel.StringType}, {"status", cel.StringType}, {"src", dynMap}, {"dst", dynMap},
	{"size", intMap}, {"tls", cel.BoolType}, {"source", cel.StringType}, {"node", cel.StringType},
	{"worker", cel.StringType}, {"flow_id", cel.StringType}, {"error", cel.StringType},
	{"http", dynMap}, {"grpc", dynMap}, {"dns", dynMap}, {"conn", dynMap},
	{"redis", dynMap}, {"kafka", dynMap}, {"amqp", dynMap}, {"postgres", dynMap},
	{"mysql", dynMap}, {"graphql", dynMap}, {"websocket", dynMap}, {"tls_hello", dynMap},
}
