package catalogpb

import (
	"context"

	"google.golang.org/grpc"
)

// Full method names of shop.catalog.v1.Catalog, as on the wire (:path).
const (
	MethodGetItem   = "/shop.catalog.v1.Catalog/GetItem"
	MethodListItems = "/shop.catalog.v1.Catalog/ListItems"
	MethodReserve   = "/shop.catalog.v1.Catalog/Reserve"
)

// CatalogServer is the server side of the Catalog service.
type CatalogServer interface {
	GetItem(context.Context, *GetItemRequest) (*Item, error)
	ListItems(context.Context, *ListItemsRequest) (*ListItemsResponse, error)
	Reserve(context.Context, *ReserveRequest) (*Reservation, error)
}

// RegisterCatalogServer serves srv on s.
func RegisterCatalogServer(s grpc.ServiceRegistrar, srv CatalogServer) {
	s.RegisterService(&catalogDesc, srv)
}

// unary adapts one typed method to grpc's untyped handler signature.
func unary[Req any, Resp any](method string, call func(CatalogServer, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	_, name := splitMethod(method)
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, req any) (any, error) {
				return call(srv.(CatalogServer), ctx, req.(*Req))
			}
			if icpt == nil {
				return handler(ctx, req)
			}
			return icpt(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handler)
		},
	}
}

func splitMethod(full string) (service, method string) {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[1:i], full[i+1:]
		}
	}
	return "", full
}

var catalogDesc = grpc.ServiceDesc{
	ServiceName: "shop.catalog.v1.Catalog",
	HandlerType: (*CatalogServer)(nil),
	Methods: []grpc.MethodDesc{
		unary(MethodGetItem, CatalogServer.GetItem),
		unary(MethodListItems, CatalogServer.ListItems),
		unary(MethodReserve, CatalogServer.Reserve),
	},
	Metadata: "catalog.proto",
}

// CatalogClient is the client side of the Catalog service.
type CatalogClient struct {
	cc grpc.ClientConnInterface
}

// NewCatalogClient calls the Catalog service over cc.
func NewCatalogClient(cc grpc.ClientConnInterface) *CatalogClient {
	return &CatalogClient{cc: cc}
}

func (c *CatalogClient) GetItem(ctx context.Context, in *GetItemRequest, opts ...grpc.CallOption) (*Item, error) {
	return invoke[Item](ctx, c.cc, MethodGetItem, in, opts)
}

func (c *CatalogClient) ListItems(ctx context.Context, in *ListItemsRequest, opts ...grpc.CallOption) (*ListItemsResponse, error) {
	return invoke[ListItemsResponse](ctx, c.cc, MethodListItems, in, opts)
}

func (c *CatalogClient) Reserve(ctx context.Context, in *ReserveRequest, opts ...grpc.CallOption) (*Reservation, error) {
	return invoke[Reservation](ctx, c.cc, MethodReserve, in, opts)
}

func invoke[Resp any](ctx context.Context, cc grpc.ClientConnInterface, method string, in any, opts []grpc.CallOption) (*Resp, error) {
	out := new(Resp)
	if err := cc.Invoke(ctx, method, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
