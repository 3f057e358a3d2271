package graphql

import (
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzEnrich feeds arbitrary request and response bodies and GET targets.
// Enrich must not panic and must keep its outputs bounded.
func FuzzEnrich(f *testing.F) {
	f.Add(`{"query":"query A($x: Int) { a(x: $x) { b } }","operationName":"A"}`, `{"errors":[{"message":"m"}]}`, "/graphql?query={a}")
	f.Add(`[{"query":"{ a }"},{"query":"mutation { b }"}]`, `{"data":{"a":"\u00e9\ud83d\ude00"}}`, "/?query=fragment%20F%20on%20T{a}")
	f.Add(`{"query":"\"\"\"doc\"\"\" query { ... on Q { x } ...F @skip(if: true) }`, `{"errors":[1,{"message":`, "?query=%zz")
	f.Fuzz(func(t *testing.T, req, resp, target string) {
		for _, method := range []string{"POST", "GET"} {
			e := &entry.Entry{Proto: entry.ProtoHTTP, HTTP: &entry.HTTP{
				Request:  &entry.HTTPRequest{Method: method, Target: target, Body: entry.Body{Data: req}},
				Response: &entry.HTTPResponse{Status: 200, Body: entry.Body{Data: resp}},
			}}
			Enrich(e)
			g := e.GraphQL
			if g == nil {
				continue
			}
			if len(g.Errors) > maxErrors || len(g.Fields) > maxFields || len(g.Name) > maxName {
				t.Fatalf("unbounded %+v", g)
			}
			for _, m := range g.Errors {
				if len(m) > maxErrorMessage {
					t.Fatalf("error message of %d bytes", len(m))
				}
			}
			if e.Proto != entry.ProtoGraphQL || e.Path == "" {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
