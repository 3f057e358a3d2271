// Package graphql recognises GraphQL operations carried over HTTP/1 and
// HTTP/2 and rewrites their entries: it is a protocol with an Enrich hook
// and no parser of its own (see dissect.Protocol.Enrich).
//
// A request is GraphQL when it is a POST whose body is JSON with a "query"
// string (or an array of such objects: a batch), or an
// application/graphql document, or a GET with a query= parameter, and that
// query parses as an executable GraphQL document. The path does not matter,
// so GraphQL served on any path is found; a REST body with a "query" field
// is not taken, since its value does not parse as an operation.
//
// The entry becomes proto "graphql": Method is the operation type in upper
// case (QUERY, MUTATION, SUBSCRIPTION), Path is the operation name or
// "anonymous", and Status is "OK" when the response has no errors,
// "ERRORS(n)" when its "errors" array has n entries (the first messages are
// in GraphQL.Errors), or the HTTP status code when the response is not
// GraphQL or was cut before its errors could be seen. The HTTP object stays,
// with the headers and bodies.
package graphql

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Bounds on what is kept of a response's errors.
const (
	maxErrors       = 4
	maxErrorMessage = 256
)

// Protocol returns the GraphQL enricher, to be registered with the HTTP
// dissectors.
func Protocol() dissect.Protocol {
	return dissect.Protocol{Name: entry.ProtoGraphQL, Enrich: Enrich}
}

// Enrich turns an HTTP entry whose request is a GraphQL operation into a
// GraphQL entry. Other entries are left as they are, cheaply.
func Enrich(e *entry.Entry) {
	if e.HTTP == nil || e.HTTP.Request == nil || (e.Proto != entry.ProtoHTTP && e.Proto != entry.ProtoHTTP2) {
		return
	}
	doc, opName, batch := request(e.HTTP.Request)
	if doc == "" {
		return
	}
	ops, ok := parseDocument(doc)
	if !ok {
		return
	}
	op := choose(ops, opName)
	g := &entry.GraphQL{Operation: op.typ, Name: op.name, Fields: op.fields}
	if batch > 1 {
		g.Batch = batch
	}
	e.Proto = entry.ProtoGraphQL
	e.Method = strings.ToUpper(op.typ)
	e.Path = op.name
	if e.Path == "" {
		e.Path = "anonymous"
	}
	e.Status = status(e.HTTP.Response, g)
	e.GraphQL = g
}

// request returns the GraphQL document and operation name of a request,
// or "" when it carries none.
func request(r *entry.HTTPRequest) (doc, opName string, batch int) {
	switch r.Method {
	case "POST":
		b := &r.Body
		if b.Encoding != "" || b.Data == "" {
			return "", "", 0
		}
		if strings.HasPrefix(r.Headers["content-type"], "application/graphql") {
			return b.Data, "", 0
		}
		return fromJSON(b.Data)
	case "GET":
		i := strings.IndexByte(r.Target, '?')
		if i < 0 || !strings.Contains(r.Target[i:], "query=") {
			return "", "", 0
		}
		q, err := url.ParseQuery(r.Target[i+1:])
		if err != nil && q.Get("query") == "" {
			return "", "", 0
		}
		return q.Get("query"), q.Get("operationName"), 0
	}
	return "", "", 0
}

// fromJSON reads "query" and "operationName" from a JSON request body,
// the first object of a batch (a JSON array) for a batch. A body cut at
// the capture limit still gives the start of its query.
func fromJSON(body string) (doc, opName string, batch int) {
	s := strings.TrimLeft(body, " \t\r\n")
	if s == "" || (s[0] != '{' && s[0] != '[') || !strings.Contains(s, `"query"`) {
		return "", "", 0
	}
	sc := scanner{s: s}
	if s[0] == '[' {
		sc.pos++
		batch = sc.countValues()
		sc.pos = 1
	}
	sc.skipSpace()
	fields := sc.objectStrings("query", "operationName")
	return fields[0], fields[1], batch
}

// choose picks the operation named opName, or the first.
func choose(ops []operation, opName string) operation {
	if opName != "" {
		for _, op := range ops {
			if op.name == opName {
				return op
			}
		}
	}
	return ops[0]
}

// status is the entry's status for resp, filling g's errors.
func status(resp *entry.HTTPResponse, g *entry.GraphQL) string {
	if resp == nil {
		return ""
	}
	b := &resp.Body
	if b.Encoding == "" && b.Data != "" {
		n, msgs, complete := responseErrors(b.Data)
		if n > 0 {
			g.ErrorCount, g.Errors = n, msgs
			return "ERRORS(" + strconv.Itoa(n) + ")"
		}
		if complete && !b.Truncated && resp.Status < 400 {
			return "OK"
		}
	}
	return strconv.Itoa(resp.Status)
}

// responseErrors counts the entries of a response's top-level "errors"
// array and returns the first messages. complete says the body was read to
// its end as one JSON object.
func responseErrors(body string) (n int, msgs []string, complete bool) {
	sc := scanner{s: body}
	sc.skipSpace()
	if !sc.consume('{') {
		return 0, nil, false
	}
	for {
		sc.skipSpace()
		if sc.consume('}') {
			return n, msgs, true
		}
		key, ok := sc.str(true)
		if !ok || !sc.colon() {
			return n, msgs, false
		}
		if key != "errors" || !sc.peek('[') {
			if !sc.skipValue() {
				return n, msgs, false
			}
		} else {
			sc.pos++
			n, msgs = sc.errorList()
		}
		sc.skipSpace()
		sc.consume(',')
	}
}
