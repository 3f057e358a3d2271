package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/kubectl-shark/kubectl-shark/hack/demoapp/catalogpb"
)

// upstreamTimeout bounds every call front makes for one request.
const upstreamTimeout = 3 * time.Second

// front is the shop's public HTTP/1.1 API. It owns no data: items come from
// catalog (gRPC), carts from cart (h2c), payments from secure (HTTPS).
type front struct {
	catalog   *pb.CatalogClient
	cart      *http.Client
	cartURL   string
	secure    *http.Client
	secureURL string
}

func runFront(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("front", flag.ContinueOnError)
	addr := fs.String("addr", envOr("FRONT_ADDR", ":8080"), "listen address")
	catalogAddr := fs.String("catalog", envOr("CATALOG", "catalog:9090"), "catalog gRPC address")
	cartURL := fs.String("cart", envOr("CART_URL", "http://cart:8080"), "cart base URL (spoken as h2c)")
	secureURL := fs.String("secure", envOr("SECURE_URL", "https://secure:8443"), "secure base URL")
	secureCA := fs.String("secure-ca", envOr("SECURE_CA", "/etc/secure-tls/"+caCertFile), "CA of secure's certificate; empty for the system roots")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cc, err := grpc.NewClient("dns:///"+*catalogAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	secure, err := secureClient(*secureCA)
	if err != nil {
		return err
	}
	f := &front{catalog: pb.NewCatalogClient(cc), cart: h2cClient(), cartURL: *cartURL, secure: secure, secureURL: *secureURL}
	// New connections now and then, as catalog's MaxConnectionAge does for
	// gRPC: a tap joining later sees whole HPACK state and TLS handshakes.
	go every(ctx, reconnectEvery, func() {
		f.cart.CloseIdleConnections()
		f.secure.CloseIdleConnections()
	})
	return listenAndServe(ctx, *addr, &http.Server{Handler: f.routes()})
}

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP.
func h2cClient() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: upstreamTimeout}
}

// secureClient speaks HTTPS with Go's crypto/tls, trusting caPath.
func secureClient(caPath string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPath != "" {
		pool, err := loadCAPool(caPath)
		if err != nil {
			return nil, fmt.Errorf("secure CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	return &http.Client{Transport: tr, Timeout: upstreamTimeout}, nil
}

func (f *front) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /api/items", f.listItems)
	mux.HandleFunc("GET /api/items/{sku}", f.getItem)
	mux.HandleFunc("GET /api/cart/{user}", f.getCart)
	mux.HandleFunc("POST /api/cart/{user}/items", f.addToCart)
	mux.HandleFunc("POST /api/checkout/{user}", f.checkout)
	mux.HandleFunc("GET /api/boom", f.boom)
	mux.HandleFunc("GET /api/slow", f.slow)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// grpcStatus maps a catalog error to the HTTP status front answers with.
func grpcStatus(err error) int {
	switch status.Code(err) {
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition:
		return http.StatusConflict
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unavailable, codes.DeadlineExceeded:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

func (f *front) getItem(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), upstreamTimeout)
	defer cancel()
	it, err := f.catalog.GetItem(ctx, &pb.GetItemRequest{Sku: r.PathValue("sku")})
	if err != nil {
		writeError(w, grpcStatus(err), status.Convert(err).Message())
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func (f *front) listItems(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	ctx, cancel := context.WithTimeout(r.Context(), upstreamTimeout)
	defer cancel()
	resp, err := f.catalog.ListItems(ctx, &pb.ListItemsRequest{Category: r.URL.Query().Get("category"), Limit: int32(limit)})
	if err != nil {
		writeError(w, grpcStatus(err), status.Convert(err).Message())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": resp.GetItems()})
}

func (f *front) getCart(w http.ResponseWriter, r *http.Request) {
	var cart struct {
		Lines []cartLine `json:"lines"`
	}
	code, err := callJSON(r.Context(), f.cart, http.MethodGet, f.cartURL+"/carts/"+r.PathValue("user"), nil, &cart)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": r.PathValue("user"), "lines": cart.Lines})
}

// addToCart checks the SKU with catalog first, so a bad SKU becomes a gRPC
// NOT_FOUND on the wire and a 404 here.
func (f *front) addToCart(w http.ResponseWriter, r *http.Request) {
	var line cartLine
	if err := readJSON(w, r, &line); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), upstreamTimeout)
	defer cancel()
	if _, err := f.catalog.GetItem(ctx, &pb.GetItemRequest{Sku: line.SKU}); err != nil {
		writeError(w, grpcStatus(err), status.Convert(err).Message())
		return
	}
	var out cartLine
	code, err := callJSON(ctx, f.cart, http.MethodPost, f.cartURL+"/carts/"+r.PathValue("user")+"/items", line, &out)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// checkout reserves every line with catalog, charges the total through
// secure, and has cart publish the order. A failure after a reservation does
// not give the stock back: catalog restocks every few minutes, which is
// enough for a demo.
func (f *front) checkout(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	ctx, cancel := context.WithTimeout(r.Context(), 2*upstreamTimeout)
	defer cancel()
	var cart struct {
		Lines []cartLine `json:"lines"`
	}
	if code, err := callJSON(ctx, f.cart, http.MethodGet, f.cartURL+"/carts/"+user, nil, &cart); err != nil {
		writeError(w, code, err.Error())
		return
	}
	if len(cart.Lines) == 0 {
		writeError(w, http.StatusConflict, "cart is empty")
		return
	}
	var total int64
	for _, l := range cart.Lines {
		res, err := f.catalog.Reserve(ctx, &pb.ReserveRequest{Sku: l.SKU, Quantity: int32(l.Quantity)})
		if err != nil {
			writeError(w, grpcStatus(err), status.Convert(err).Message())
			return
		}
		total += res.GetTotalCents()
	}
	var ch charge
	code, err := callJSON(ctx, f.secure, http.MethodPost, f.secureURL+"/v1/charges", charge{User: user, AmountCents: total}, &ch)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	o := order{ID: "ord_" + randomHex(6), Lines: cart.Lines, TotalCents: total, Charge: ch.ID}
	var placed map[string]any
	if code, err := callJSON(ctx, f.cart, http.MethodPost, f.cartURL+"/carts/"+user+"/checkout", o, &placed); err != nil {
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, placed)
}

// boom is the demo's broken endpoint: always a 500.
func (f *front) boom(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusInternalServerError, "inventory sync failed: upstream ledger timed out")
}

// slow answers late, for latency columns and filters on elapsed.
func (f *front) slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(250 * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "eventually"})
}

// callJSON sends in (if not nil) as JSON and decodes a 2xx answer into out. On
// failure it returns the status front should answer with.
func callJSON(ctx context.Context, c *http.Client, method, url string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return http.StatusInternalServerError, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return http.StatusBadGateway, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return http.StatusBadGateway, err
	}
	if resp.StatusCode/100 != 2 {
		var ae apiError
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			ae.Error = resp.Status
		}
		return passStatus(resp.StatusCode), errors.New(ae.Error)
	}
	if out == nil || len(data) == 0 {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return http.StatusBadGateway, fmt.Errorf("%s %s: %w", method, url, err)
	}
	return resp.StatusCode, nil
}

// passStatus keeps client errors an upstream reports and turns its server
// errors into 502.
func passStatus(code int) int {
	if code >= 400 && code < 500 {
		return code
	}
	return http.StatusBadGateway
}
