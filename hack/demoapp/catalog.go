package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/kubectl-shark/kubectl-shark/hack/demoapp/catalogpb"
)

// catalogSeed is the shop's inventory. sku-7 is always out of stock, so that
// some checkouts fail with FAILED_PRECONDITION.
func catalogSeed() []*pb.Item {
	return []*pb.Item{
		{Sku: "sku-1", Name: "espresso cup", Category: "coffee", PriceCents: 1200, Stock: 400, Tags: []string{"ceramic"}},
		{Sku: "sku-2", Name: "french press", Category: "coffee", PriceCents: 3400, Stock: 120, Tags: []string{"glass"}},
		{Sku: "sku-3", Name: "pour-over kettle", Category: "kitchen", PriceCents: 5900, Stock: 60, Tags: []string{"steel"}},
		{Sku: "sku-7", Name: "milk jug", Category: "kitchen", PriceCents: 1550, Stock: 0, Tags: []string{"steel"}},
		{Sku: "sku-42", Name: "grinder", Category: "coffee", PriceCents: 12900, Stock: 30, Tags: []string{"electric"}},
	}
}

// reconnectEvery is how often the demo's long-lived HTTP/2 connections start
// over (see runCatalog and runFront).
const reconnectEvery = 30 * time.Second

// restockEvery puts the stock back to the seed, so a long demo keeps
// succeeding checkouts instead of running dry.
const restockEvery = 2 * time.Minute

// catalog is an in-memory shop.catalog.v1.Catalog.
type catalog struct {
	mu    sync.Mutex
	items map[string]*pb.Item
}

func newCatalog() *catalog {
	c := &catalog{}
	c.restock()
	return c
}

func (c *catalog) restock() {
	items := make(map[string]*pb.Item)
	for _, it := range catalogSeed() {
		items[it.Sku] = it
	}
	c.mu.Lock()
	c.items = items
	c.mu.Unlock()
}

func (c *catalog) GetItem(_ context.Context, req *pb.GetItemRequest) (*pb.Item, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[req.GetSku()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no item with sku %q", req.GetSku())
	}
	return proto.CloneOf(it), nil
}

func (c *catalog) ListItems(_ context.Context, req *pb.ListItemsRequest) (*pb.ListItemsResponse, error) {
	if req.GetLimit() < 0 {
		return nil, status.Error(codes.InvalidArgument, "limit must not be negative")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &pb.ListItemsResponse{}
	for _, it := range c.items {
		if req.GetCategory() == "" || strings.EqualFold(it.Category, req.GetCategory()) {
			resp.Items = append(resp.Items, proto.CloneOf(it))
		}
	}
	sort.Slice(resp.Items, func(i, j int) bool { return resp.Items[i].Sku < resp.Items[j].Sku })
	if n := int(req.GetLimit()); n > 0 && len(resp.Items) > n {
		resp.Items = resp.Items[:n]
	}
	return resp, nil
}

func (c *catalog) Reserve(_ context.Context, req *pb.ReserveRequest) (*pb.Reservation, error) {
	if req.GetQuantity() <= 0 {
		return nil, status.Error(codes.InvalidArgument, "quantity must be positive")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[req.GetSku()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no item with sku %q", req.GetSku())
	}
	if it.Stock < req.GetQuantity() {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: %d in stock, %d wanted", it.Sku, it.Stock, req.GetQuantity())
	}
	it.Stock -= req.GetQuantity()
	return &pb.Reservation{
		Sku: it.Sku, Quantity: req.GetQuantity(),
		TotalCents: it.PriceCents * int64(req.GetQuantity()), StockLeft: it.Stock,
	}, nil
}

func runCatalog(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	addr := fs.String("addr", envOr("CATALOG_ADDR", ":9090"), "gRPC listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	cat := newCatalog()
	// Clients reconnect every half minute: a tap that starts in the middle of
	// a connection misses its HPACK table and shows no paths until then.
	srv := grpc.NewServer(grpc.KeepaliveParams(keepalive.ServerParameters{
		MaxConnectionAge: reconnectEvery, MaxConnectionAgeGrace: 10 * time.Second,
	}))
	pb.RegisterCatalogServer(srv, cat)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go restockLoop(ctx, cat)
	go func() {
		<-ctx.Done()
		hs.Shutdown() // NOT_SERVING first, so the readiness probe drains us
		srv.GracefulStop()
	}()
	slog.Info("listening", "addr", ln.Addr().String(), "service", "shop.catalog.v1.Catalog")
	return srv.Serve(ln)
}

func restockLoop(ctx context.Context, c *catalog) {
	t := time.NewTicker(restockEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.restock()
		}
	}
}
