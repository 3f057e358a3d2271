package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graphql-go/graphql"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// GraphQL log keys: "<operation> <name> <status>", the operation in lower
// case, the name "anonymous" when the operation has none, the status "OK"
// or "ERRORS(n)" for a response whose errors array has n entries.

type item struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

// catalog is the GraphQL server's data.
type catalog struct {
	mu    sync.Mutex
	items []item
}

func (c *catalog) schema() (graphql.Schema, error) {
	itemType := graphql.NewObject(graphql.ObjectConfig{Name: "Item", Fields: graphql.Fields{
		"id":    &graphql.Field{Type: graphql.NewNonNull(graphql.Int)},
		"name":  &graphql.Field{Type: graphql.NewNonNull(graphql.String)},
		"price": &graphql.Field{Type: graphql.NewNonNull(graphql.Float)},
	}})
	query := graphql.NewObject(graphql.ObjectConfig{Name: "Query", Fields: graphql.Fields{
		"item": &graphql.Field{
			Type: itemType,
			Args: graphql.FieldConfigArgument{"id": &graphql.ArgumentConfig{Type: graphql.NewNonNull(graphql.Int)}},
			Resolve: func(p graphql.ResolveParams) (any, error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				id, _ := p.Args["id"].(int)
				for _, it := range c.items {
					if it.ID == id {
						return it, nil
					}
				}
				return nil, nil
			},
		},
		"items": &graphql.Field{
			Type: graphql.NewList(itemType),
			Resolve: func(graphql.ResolveParams) (any, error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				return append([]item(nil), c.items...), nil
			},
		},
		"fail": &graphql.Field{
			Type: graphql.String,
			Resolve: func(graphql.ResolveParams) (any, error) {
				return nil, errors.New("inventory backend unavailable")
			},
		},
	}})
	mutation := graphql.NewObject(graphql.ObjectConfig{Name: "Mutation", Fields: graphql.Fields{
		"addItem": &graphql.Field{
			Type: itemType,
			Args: graphql.FieldConfigArgument{
				"name":  &graphql.ArgumentConfig{Type: graphql.NewNonNull(graphql.String)},
				"price": &graphql.ArgumentConfig{Type: graphql.NewNonNull(graphql.Float)},
			},
			Resolve: func(p graphql.ResolveParams) (any, error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				it := item{ID: len(c.items) + 1, Name: p.Args["name"].(string), Price: p.Args["price"].(float64)}
				c.items = append(c.items, it)
				return it, nil
			},
		},
	}})
	return graphql.NewSchema(graphql.SchemaConfig{Query: query, Mutation: mutation})
}

// graphqlServer serves /graphql over HTTP/1.1 and h2c: POST with a JSON
// body or an application/graphql document, GET with ?query=.
func graphqlServer(args []string) error {
	fs := flag.NewFlagSet("graphql-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address")
	duration := fs.Duration("duration", 10*time.Minute, "exit after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &catalog{items: []item{{1, "widget", 2.5}, {2, "sprocket", 12}, {3, "flange", 7.25}}}
	schema, err := c.schema()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query         string         `json:"query"`
			OperationName string         `json:"operationName"`
			Variables     map[string]any `json:"variables"`
		}
		switch {
		case r.Method == http.MethodGet:
			q := r.URL.Query()
			req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
			if v := q.Get("variables"); v != "" {
				json.Unmarshal([]byte(v), &req.Variables)
			}
		case strings.HasPrefix(r.Header.Get("Content-Type"), "application/graphql"):
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			req.Query = string(b)
		default:
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
				http.Error(w, "bad request body", http.StatusBadRequest)
				return
			}
		}
		res := graphql.Do(graphql.Params{Schema: schema, RequestString: req.Query,
			OperationName: req.OperationName, VariableValues: req.Variables, Context: r.Context()})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	srv := &http.Server{Addr: *addr, Handler: h2c.NewHandler(mux, &http2.Server{}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		time.Sleep(*duration)
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// gqlRequest is one request the client makes with curl.
type gqlRequest struct {
	op, name      string // what the log expects the dissector to say
	get           bool   // GET ?query= instead of POST
	raw           bool   // POST as application/graphql
	http2         bool   // curl --http2-prior-knowledge
	query         string
	operationName string
	variables     string
}

var gqlRequests = []gqlRequest{
	{op: "query", name: "GetItem", query: "query GetItem($id: Int!) {\n  item(id: $id) { id name price }\n}",
		operationName: "GetItem", variables: `{"id": 2}`},
	{op: "query", name: "anonymous", query: "{ items { id name } }"},
	{op: "mutation", name: "AddItem", query: `mutation AddItem { addItem(name: "gizmo", price: 1.5) { id } }`},
	{op: "query", name: "Broken", query: "query Broken { item(id: 1) { nme } }"},
	{op: "query", name: "Failing", query: "# a resolver that fails\nquery Failing { fail items { id } }"},
	{op: "query", name: "anonymous", get: true, query: "{items{id}}"},
	{op: "query", name: "B", get: true, query: "query A { items { id } }\nquery B { item(id: 2) { name } }", operationName: "B"},
	{op: "query", name: "WithFragment", query: "fragment F on Item { id name }\nquery WithFragment { items { ...F } }"},
	{op: "mutation", name: "anonymous", raw: true, query: `mutation { addItem(name: "doohickey", price: 2) { id name } }`},
	{op: "query", name: "anonymous", query: "query { items { id }"},
	{op: "subscription", name: "Prices", query: "subscription Prices { price }"},
	{op: "query", name: "OverH2", http2: true, query: `query OverH2 { item(id: 1) { name } }`},
	{op: "mutation", name: "AddOverH2", http2: true,
		query: `mutation AddOverH2($n: String!) { addItem(name: $n, price: 9) { id } }`, variables: `{"n": "bolt"}`},
}

// graphqlClient sends gqlRequests with curl, one connection each, and logs
// each outcome from the response body.
func graphqlClient(args []string) error {
	fs := flag.NewFlagSet("graphql-client", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:4000/graphql", "endpoint")
	logPath := fs.String("log", "", "log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l := Log{}
	for _, r := range gqlRequests {
		body, err := curlGraphQL(*base, r)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.op, r.name, err)
		}
		var res struct {
			Errors []json.RawMessage `json:"errors"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("%s %s: response %q: %w", r.op, r.name, body, err)
		}
		st := "OK"
		if len(res.Errors) > 0 {
			st = "ERRORS(" + strconv.Itoa(len(res.Errors)) + ")"
		}
		l.entry("graphql", r.op, r.name, st)
	}
	return l.write(*logPath)
}

func curlGraphQL(base string, r gqlRequest) ([]byte, error) {
	args := []string{"-sS", "--fail-with-body", "--max-time", "10"}
	if r.http2 {
		args = append(args, "--http2-prior-knowledge")
	}
	var stdin string
	switch {
	case r.get:
		q := url.Values{"query": {r.query}}
		if r.operationName != "" {
			q.Set("operationName", r.operationName)
		}
		args = append(args, base+"?"+q.Encode())
	case r.raw:
		args = append(args, "-H", "Content-Type: application/graphql", "--data-binary", "@-", base)
		stdin = r.query
	default:
		body := map[string]any{"query": r.query}
		if r.operationName != "" {
			body["operationName"] = r.operationName
		}
		if r.variables != "" {
			body["variables"] = json.RawMessage(r.variables)
		}
		b, _ := json.Marshal(body)
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", "@-", base)
		stdin = string(b)
	}
	cmd := exec.Command("curl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd.Output()
}
