package graphql

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func TestParseDocument(t *testing.T) {
	tests := []struct {
		doc string
		ops []operation
		ok  bool
	}{
		{"{ items { id } }", []operation{{typ: "query", fields: []string{"items"}}}, true},
		{"query GetItem($id: Int! = 1) @cached { item(id: $id) { id } other: items { name } }",
			[]operation{{typ: "query", name: "GetItem", fields: []string{"item", "items"}}}, true},
		{"# comment\nmutation { a: addItem(name: \"x{\") { id } ...F ... on Mutation { hidden } ...@include(if: true) { also } }",
			[]operation{{typ: "mutation", fields: []string{"addItem"}}}, true},
		{"fragment F on Item { id }\nquery A { items { ...F } }\nsubscription S { price }",
			[]operation{{typ: "query", name: "A", fields: []string{"items"}}, {typ: "subscription", name: "S", fields: []string{"price"}}}, true},
		{`query Q { f(s: """block "quoted" \""" end""") }`, []operation{{typ: "query", name: "Q", fields: []string{"f"}}}, true},
		{"query Cut { items { id", []operation{{typ: "query", name: "Cut", fields: []string{"items"}}}, true},
		{"shoes", nil, false},
		{"SELECT * FROM t", nil, false},
		{"type Query { a: Int }", nil, false},
		{"", nil, false},
		{"{ a } ; drop", []operation{{typ: "query", fields: []string{"a"}}}, false},
	}
	for _, tc := range tests {
		ops, ok := parseDocument(tc.doc)
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.doc, ok)
		}
		if diff := cmp.Diff(tc.ops, ops, cmp.AllowUnexported(operation{})); diff != "" {
			t.Errorf("%q: operations (-want +got):\n%s", tc.doc, diff)
		}
	}
}

func post(body, ct string) *entry.Entry {
	return &entry.Entry{Proto: entry.ProtoHTTP, Method: "POST", Path: "/api", Status: "200", HTTP: &entry.HTTP{Version: "1.1",
		Request: &entry.HTTPRequest{Method: "POST", Target: "/api", Headers: map[string]string{"content-type": ct},
			Body: entry.Body{Size: int64(len(body)), Data: body}}}}
}

func respond(e *entry.Entry, status int, body string, truncated bool) *entry.Entry {
	e.HTTP.Response = &entry.HTTPResponse{Status: status, Body: entry.Body{Data: body, Truncated: truncated}}
	return e
}

func TestEnrich(t *testing.T) {
	get := func(target string) *entry.Entry {
		return &entry.Entry{Proto: entry.ProtoHTTP2, HTTP: &entry.HTTP{Version: "2",
			Request: &entry.HTTPRequest{Method: "GET", Target: target}}}
	}
	ok := `{"data":{"items":[]}}`
	tests := []struct {
		name string
		e    *entry.Entry
		want string // proto method path status
		gql  *entry.GraphQL
	}{{
		name: "named query with operationName",
		e: respond(post(`{"query":"query A { a } query B { b }","operationName":"B","variables":{"x":[1,{"y":"}"}]}}`,
			"application/json"), 200, ok, false),
		want: "graphql QUERY B OK",
		gql:  &entry.GraphQL{Operation: "query", Name: "B", Fields: []string{"b"}},
	}, {
		name: "escapes in the JSON string",
		e:    respond(post(`{"query":"mutation \"\u0041\" {\n  add(n: \"x\") { id }\n}"}`, "application/json"), 200, ok, false),
		want: "", // "mutation "A" {" is not GraphQL
	}, {
		name: "unicode escape in a name",
		e:    respond(post(`{"query":"mutation M\u0031 {\n  add { id }\n}"}`, "application/json"), 200, ok, false),
		want: "graphql MUTATION M1 OK",
		gql:  &entry.GraphQL{Operation: "mutation", Name: "M1", Fields: []string{"add"}},
	}, {
		name: "errors",
		e: respond(post(`{"query":"{ fail }"}`, "application/json"), 200,
			`{"data":{"fail":null},"errors":[{"message":"boom \"x\"","locations":[{"line":1}]},{"message":"two"}]}`, false),
		want: "graphql QUERY anonymous ERRORS(2)",
		gql:  &entry.GraphQL{Operation: "query", Fields: []string{"fail"}, Errors: []string{`boom "x"`, "two"}, ErrorCount: 2},
	}, {
		name: "errors first, body cut",
		e:    respond(post(`{"query":"{ a }"}`, "application/json"), 200, `{"errors":[{"message":"m"}],"data":{"a":"xxxx`, true),
		want: "graphql QUERY anonymous ERRORS(1)",
		gql:  &entry.GraphQL{Operation: "query", Fields: []string{"a"}, Errors: []string{"m"}, ErrorCount: 1},
	}, {
		name: "response cut before errors could be seen",
		e:    respond(post(`{"query":"{ a }"}`, "application/json"), 200, `{"data":{"a":"xx`, true),
		want: "graphql QUERY anonymous 200",
		gql:  &entry.GraphQL{Operation: "query", Fields: []string{"a"}},
	}, {
		name: "not GraphQL response",
		e:    respond(post(`{"query":"{ a }"}`, "application/json"), 502, `<html>bad gateway</html>`, false),
		want: "graphql QUERY anonymous 502",
		gql:  &entry.GraphQL{Operation: "query", Fields: []string{"a"}},
	}, {
		name: "no response",
		e:    post(`{"query":"subscription S { s }"}`, "application/json"),
		want: "graphql SUBSCRIPTION S ",
		gql:  &entry.GraphQL{Operation: "subscription", Name: "S", Fields: []string{"s"}},
	}, {
		name: "batch",
		e:    respond(post(`[{"query":"query One { a }"},{"query":"query Two { b }"}]`, "application/json"), 200, `[{"data":{}},{"data":{}}]`, false),
		want: "graphql QUERY One 200",
		gql:  &entry.GraphQL{Operation: "query", Name: "One", Fields: []string{"a"}, Batch: 2},
	}, {
		name: "application/graphql",
		e:    respond(post("mutation { m }", "application/graphql; charset=utf-8"), 200, ok, false),
		want: "graphql MUTATION anonymous OK",
		gql:  &entry.GraphQL{Operation: "mutation", Fields: []string{"m"}},
	}, {
		name: "request body cut inside the query",
		e:    post(`{"query":"query Long { field1 field2 fie`, "application/json"),
		want: "graphql QUERY Long ",
		gql:  &entry.GraphQL{Operation: "query", Name: "Long", Fields: []string{"field1", "field2", "fie"}},
	}, {
		name: "GET over HTTP/2",
		e:    get("/gql?query=query%20G%20%7B%20x%20%7D&operationName=G"),
		want: "graphql QUERY G ",
		gql:  &entry.GraphQL{Operation: "query", Name: "G", Fields: []string{"x"}},
	}, {
		name: "REST search is not GraphQL",
		e:    respond(post(`{"query":"red shoes","limit":10}`, "application/json"), 200, ok, false),
		want: "",
	}, {
		name: "GET with a search query is not GraphQL",
		e:    get("/search?query=shoes"),
		want: "",
	}, {
		name: "binary body",
		e: func() *entry.Entry {
			e := post(`{"query":"{ a }"}`, "application/json")
			e.HTTP.Request.Body.Encoding = "base64"
			return e
		}(),
		want: "",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := *tc.e
			Enrich(tc.e)
			if tc.want == "" {
				if tc.e.Proto != before.Proto || tc.e.GraphQL != nil || tc.e.Method != before.Method {
					t.Errorf("entry changed: %+v", tc.e)
				}
				return
			}
			if got := tc.e.Proto + " " + tc.e.Method + " " + tc.e.Path + " " + tc.e.Status; got != tc.want {
				t.Errorf("entry %q, want %q", got, tc.want)
			}
			if diff := cmp.Diff(tc.gql, tc.e.GraphQL); diff != "" {
				t.Errorf("graphql (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnrichOthers(t *testing.T) {
	for _, e := range []*entry.Entry{
		{Proto: entry.ProtoDNS},
		{Proto: entry.ProtoGRPC, HTTP: &entry.HTTP{Request: &entry.HTTPRequest{Method: "POST",
			Body: entry.Body{Data: `{"query":"{ a }"}`}}}},
		{Proto: entry.ProtoHTTP, HTTP: &entry.HTTP{}},
	} {
		proto := e.Proto
		Enrich(e)
		if e.Proto != proto || e.GraphQL != nil {
			t.Errorf("changed %+v", e)
		}
	}
}
