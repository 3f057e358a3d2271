package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// catalogItems is the gRPC catalog; its SKUs match the HTTP API's items.
var catalogItems = []Item{
	{SKU: "sku-1", Name: "espresso cup", PriceCents: 1200, Stock: 40, Tags: []string{"coffee", "ceramic"}},
	{SKU: "sku-2", Name: "french press", PriceCents: 3400, Stock: 12, Tags: []string{"coffee"}},
	{SKU: "sku-7", Name: "milk jug", PriceCents: 1550, Stock: 0, Tags: []string{"kitchen"}},
	{SKU: "sku-42", Name: "grinder", PriceCents: 12900, Stock: 3, Tags: []string{"coffee", "electric"}},
}

// Full method names of demo.Catalog.
const (
	methodGetItem     = "/demo.Catalog/GetItem"
	methodListItems   = "/demo.Catalog/ListItems"
	methodReserve     = "/demo.Catalog/Reserve"
	methodWatchPrices = "/demo.Catalog/WatchPrices"
)

// catalogService is demo.Catalog; grpc checks servers against it.
type catalogService interface {
	GetItem(ctx context.Context, req *GetItemRequest) (*Item, error)
	ListItems(req *ListItemsRequest, stream grpc.ServerStream) error
	Reserve(stream grpc.ServerStream) error
	WatchPrices(stream grpc.ServerStream) error
}

// catalogDesc describes demo.Catalog the way protoc-gen-go-grpc would.
var catalogDesc = grpc.ServiceDesc{
	ServiceName: "demo.Catalog",
	HandlerType: (*catalogService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "GetItem",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			req := new(GetItemRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(catalogService).GetItem(ctx, req.(*GetItemRequest))
			}
			if icpt == nil {
				return call(ctx, req)
			}
			return icpt(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodGetItem}, call)
		},
	}},
	Streams: []grpc.StreamDesc{
		{StreamName: "ListItems", ServerStreams: true, Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(ListItemsRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(catalogService).ListItems(req, stream)
		}},
		{StreamName: "Reserve", ClientStreams: true, Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(catalogService).Reserve(stream)
		}},
		{StreamName: "WatchPrices", ServerStreams: true, ClientStreams: true, Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(catalogService).WatchPrices(stream)
		}},
	},
	Metadata: "demo/catalog.proto",
}

// catalogServer serves the fixed catalog.
type catalogServer struct{ items []Item }

func (s *catalogServer) find(sku string) (Item, error) {
	if sku == "" {
		return Item{}, status.Error(codes.InvalidArgument, "sku is required")
	}
	for _, it := range s.items {
		if it.SKU == sku {
			return it, nil
		}
	}
	return Item{}, status.Errorf(codes.NotFound, "no item %q", sku)
}

func (s *catalogServer) GetItem(_ context.Context, req *GetItemRequest) (*Item, error) {
	it, err := s.find(req.SKU)
	if err != nil {
		return nil, err
	}
	return &it, nil
}

func (s *catalogServer) ListItems(req *ListItemsRequest, stream grpc.ServerStream) error {
	if req.Limit < 0 {
		return status.Error(codes.InvalidArgument, "limit must be >= 0")
	}
	sent := int32(0)
	for _, it := range s.items {
		if req.Limit > 0 && sent == req.Limit {
			break
		}
		if req.Category != "" && !hasTag(it, req.Category) {
			continue
		}
		if err := stream.SendMsg(&it); err != nil {
			return err
		}
		sent++
	}
	return nil
}

func hasTag(it Item, tag string) bool {
	for _, t := range it.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Reserve sums a client stream of reservations into one summary.
func (s *catalogServer) Reserve(stream grpc.ServerStream) error {
	var sum ReserveSummary
	for {
		var req ReserveRequest
		err := stream.RecvMsg(&req)
		if errors.Is(err, io.EOF) {
			return stream.SendMsg(&sum)
		}
		if err != nil {
			return err
		}
		if req.Quantity <= 0 {
			return status.Error(codes.InvalidArgument, "quantity must be positive")
		}
		it, err := s.find(req.SKU)
		if err != nil {
			return err
		}
		sum.Reserved += req.Quantity
		sum.TotalCents += int64(req.Quantity) * it.PriceCents
	}
}

// WatchPrices answers each price query on a bidirectional stream.
func (s *catalogServer) WatchPrices(stream grpc.ServerStream) error {
	for {
		var q PriceQuery
		err := stream.RecvMsg(&q)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		it, err := s.find(q.SKU)
		if err != nil {
			return err
		}
		if err := stream.SendMsg(&PriceUpdate{SKU: it.SKU, PriceCents: it.PriceCents}); err != nil {
			return err
		}
	}
}

// newGRPCServer serves demo.Catalog and grpc.health.v1.Health.
func newGRPCServer() *grpc.Server {
	srv := grpc.NewServer(grpc.ForceServerCodec(wireCodec{}))
	srv.RegisterService(&catalogDesc, &catalogServer{items: catalogItems})
	hs := health.NewServer()
	hs.SetServingStatus("demo.Catalog", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	return srv
}

func runGRPCServer(ctx context.Context, args []string) error {
	fs := newFlagSet("grpc-server")
	var sf serveFlags
	sf.register(fs, "127.0.0.1:50051")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := sf.context(ctx)
	defer cancel()
	ln, err := net.Listen("tcp", sf.addr)
	if err != nil {
		return err
	}
	srv := newGRPCServer()
	log.Printf("serving gRPC on %s", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.GracefulStop()
	return <-errc
}

// grpcCall is one call of the client's plan.
type grpcCall struct {
	method string
	do     func(ctx context.Context, cc *grpc.ClientConn) error
}

// grpcPlan is the call mix the client cycles through: every RPC shape,
// success and the common error codes.
var grpcPlan = []grpcCall{
	{methodGetItem, getItemCall("sku-42")},
	{methodGetItem, getItemCall("sku-404")}, // NOT_FOUND
	{methodGetItem, getItemCall("")},        // INVALID_ARGUMENT
	{methodListItems, listItemsCall("coffee", 3)},
	{methodReserve, reserveCall([]ReserveRequest{{"sku-1", 2}, {"sku-2", 1}, {"sku-42", 1}})},
	{methodWatchPrices, watchPricesCall([]string{"sku-1", "sku-7", "sku-42"})},
	{"/grpc.health.v1.Health/Check", healthCall("demo.Catalog")},
	{methodGetItem, getItemCall("sku-1")},
	{methodReserve, reserveCall([]ReserveRequest{{"sku-1", 0}})},                                                  // INVALID_ARGUMENT mid-stream
	{"/demo.Catalog/Discontinue", unaryCall("/demo.Catalog/Discontinue", &GetItemRequest{SKU: "sku-2"}, &Item{})}, // UNIMPLEMENTED
}

func unaryCall(method string, req, resp wireMessage) func(context.Context, *grpc.ClientConn) error {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		return cc.Invoke(ctx, method, req, resp)
	}
}

func getItemCall(sku string) func(context.Context, *grpc.ClientConn) error {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		// Credentials in metadata, for the redaction tests.
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", demoBearer)
		return cc.Invoke(ctx, methodGetItem, &GetItemRequest{SKU: sku}, &Item{})
	}
}

func listItemsCall(category string, limit int32) func(context.Context, *grpc.ClientConn) error {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		st, err := cc.NewStream(ctx, &catalogDesc.Streams[0], methodListItems)
		if err != nil {
			return err
		}
		if err := st.SendMsg(&ListItemsRequest{Category: category, Limit: limit}); err != nil {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		return recvAll(st, func() wireMessage { return &Item{} })
	}
}

func reserveCall(reqs []ReserveRequest) func(context.Context, *grpc.ClientConn) error {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		st, err := cc.NewStream(ctx, &catalogDesc.Streams[1], methodReserve)
		if err != nil {
			return err
		}
		for i := range reqs {
			if err := st.SendMsg(&reqs[i]); err != nil {
				break // the server ended the call; RecvMsg has its status
			}
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		return recvAll(st, func() wireMessage { return &ReserveSummary{} })
	}
}

func watchPricesCall(skus []string) func(context.Context, *grpc.ClientConn) error {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		st, err := cc.NewStream(ctx, &catalogDesc.Streams[2], methodWatchPrices)
		if err != nil {
			return err
		}
		// Ping-pong: each query waits for its update.
		for _, sku := range skus {
			if err := st.SendMsg(&PriceQuery{SKU: sku}); err != nil {
				break
			}
			if err := st.RecvMsg(&PriceUpdate{}); err != nil {
				return err
			}
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		return recvAll(st, func() wireMessage { return &PriceUpdate{} })
	}
}

func healthCall(service string) func(context.Context, *grpc.ClientConn) error {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return err
	}
}

// recvAll reads messages until the call ends and returns its status error
// (nil for OK).
func recvAll(st grpc.ClientStream, newMsg func() wireMessage) error {
	for {
		err := st.RecvMsg(newMsg())
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func runGRPCClient(ctx context.Context, args []string) error {
	fs := newFlagSet("grpc-client")
	var cf clientFlags
	cf.register(fs, len(grpcPlan)*3, 2)
	addr := fs.String("addr", "127.0.0.1:50051", "gRPC server address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	cc, err := dialGRPC(*addr)
	if err != nil {
		return err
	}
	defer cc.Close()

	if cf.warmup > 0 {
		err := forEach(ctx, cf.warmup, cf.c, func(ctx context.Context, _ int) error {
			return grpcPlan[0].do(ctx, cc)
		})
		if err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
	}
	if err := cf.pause(ctx); err != nil {
		return err
	}
	var rec recorder
	err = forEach(ctx, cf.n, cf.c, func(ctx context.Context, i int) error {
		call := grpcPlan[i%len(grpcPlan)]
		code := status.Code(call.do(ctx, cc))
		if code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled {
			return fmt.Errorf("%s: %v", call.method, code)
		}
		rec.grpc(call.method, int(code))
		return nil
	})
	if err != nil {
		return err
	}
	return rec.save(cf.log)
}

// dialGRPC connects without name resolution, so a capture holds no DNS
// lookups of the client's own making.
func dialGRPC(addr string) (*grpc.ClientConn, error) {
	if !strings.Contains(addr, "://") {
		addr = "passthrough:///" + addr
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(wireCodec{})))
}
