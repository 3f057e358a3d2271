package main

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/kubectl-shark/kubectl-shark/hack/demoapp/catalogpb"
)

func TestCatalogReserve(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		req      *pb.ReserveRequest
		want     *pb.Reservation
		wantCode codes.Code
	}{
		{"in stock", &pb.ReserveRequest{Sku: "sku-42", Quantity: 2}, &pb.Reservation{Sku: "sku-42", Quantity: 2, TotalCents: 25800, StockLeft: 28}, codes.OK},
		{"stock goes down", &pb.ReserveRequest{Sku: "sku-42", Quantity: 28}, &pb.Reservation{Sku: "sku-42", Quantity: 28, TotalCents: 28 * 12900, StockLeft: 0}, codes.OK},
		{"sold out", &pb.ReserveRequest{Sku: "sku-42", Quantity: 1}, nil, codes.FailedPrecondition},
		{"never in stock", &pb.ReserveRequest{Sku: "sku-7", Quantity: 1}, nil, codes.FailedPrecondition},
		{"unknown", &pb.ReserveRequest{Sku: "sku-0", Quantity: 1}, nil, codes.NotFound},
		{"zero", &pb.ReserveRequest{Sku: "sku-1"}, nil, codes.InvalidArgument},
	}
	c := newCatalog() // one catalog: the cases run in order and share stock
	for _, tt := range tests {
		got, err := c.Reserve(ctx, tt.req)
		if code := status.Code(err); code != tt.wantCode {
			t.Errorf("%s: Reserve(%v) code %v (%v), want %v", tt.name, tt.req, code, err, tt.wantCode)
			continue
		}
		if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s: Reserve(%v) (-want +got):\n%s", tt.name, tt.req, diff)
		}
	}
	c.restock()
	if it, _ := c.GetItem(ctx, &pb.GetItemRequest{Sku: "sku-42"}); it.GetStock() != 30 {
		t.Errorf("stock of sku-42 after restock = %d, want 30", it.GetStock())
	}
}

func TestCatalogListItems(t *testing.T) {
	c := newCatalog()
	tests := []struct {
		req      *pb.ListItemsRequest
		wantSKUs []string
		wantCode codes.Code
	}{
		{&pb.ListItemsRequest{}, []string{"sku-1", "sku-2", "sku-3", "sku-42", "sku-7"}, codes.OK},
		{&pb.ListItemsRequest{Category: "coffee"}, []string{"sku-1", "sku-2", "sku-42"}, codes.OK},
		{&pb.ListItemsRequest{Category: "KITCHEN", Limit: 1}, []string{"sku-3"}, codes.OK},
		{&pb.ListItemsRequest{Category: "garden"}, nil, codes.OK},
		{&pb.ListItemsRequest{Limit: -1}, nil, codes.InvalidArgument},
	}
	for _, tt := range tests {
		resp, err := c.ListItems(context.Background(), tt.req)
		if code := status.Code(err); code != tt.wantCode {
			t.Errorf("ListItems(%v) code %v, want %v", tt.req, code, tt.wantCode)
			continue
		}
		var skus []string
		for _, it := range resp.GetItems() {
			skus = append(skus, it.GetSku())
		}
		if diff := cmp.Diff(tt.wantSKUs, skus); diff != "" {
			t.Errorf("ListItems(%v) SKUs (-want +got):\n%s", tt.req, diff)
		}
	}
}

// TestCatalogGetItemIsACopy: a caller changing an answer must not change the
// catalog's stock.
func TestCatalogGetItemIsACopy(t *testing.T) {
	c := newCatalog()
	it, err := c.GetItem(context.Background(), &pb.GetItemRequest{Sku: "sku-1"})
	if err != nil {
		t.Fatal(err)
	}
	it.Stock = 0
	again, _ := c.GetItem(context.Background(), &pb.GetItemRequest{Sku: "sku-1"})
	if again.GetStock() != 400 {
		t.Errorf("stock = %d after a caller changed its copy, want 400", again.GetStock())
	}
}
