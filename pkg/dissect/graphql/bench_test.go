package graphql

import (
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// BenchmarkEnrichREST is the cost Enrich adds to an HTTP entry that is not
// GraphQL: a JSON POST to a REST API.
func BenchmarkEnrichREST(b *testing.B) {
	body := `{"name":"widget","price":12.5,"tags":["a","b","c"],"description":"` + string(make([]byte, 512)) + `"}`
	e := post(body, "application/json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		Enrich(e)
	}
	if e.Proto != entry.ProtoHTTP {
		b.Fatal("enriched")
	}
}

// BenchmarkEnrichQuery enriches a typical GraphQL query and its response.
func BenchmarkEnrichQuery(b *testing.B) {
	req := `{"query":"query GetItem($id: Int!) {\n  item(id: $id) { id name price reviews(first: 5) { stars body } }\n}","operationName":"GetItem","variables":{"id":2}}`
	resp := `{"data":{"item":{"id":2,"name":"sprocket","price":12,"reviews":[{"stars":5,"body":"great"}]}}}`
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		e := respond(post(req, "application/json"), 200, resp, false)
		Enrich(e)
		if e.Proto != entry.ProtoGraphQL {
			b.Fatal("not enriched")
		}
	}
}
