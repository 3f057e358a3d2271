package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

func TestWireRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		in    wireMessage
		empty func() wireMessage
	}{
		{"GetItemRequest", &GetItemRequest{SKU: "sku-42"}, func() wireMessage { return &GetItemRequest{} }},
		{"Item", &Item{SKU: "sku-1", Name: "cup", PriceCents: 1200, Stock: -3, Tags: []string{"a", "b"}},
			func() wireMessage { return &Item{} }},
		{"ListItemsRequest", &ListItemsRequest{Category: "coffee", Limit: 3}, func() wireMessage { return &ListItemsRequest{} }},
		{"ReserveRequest", &ReserveRequest{SKU: "sku-2", Quantity: 7}, func() wireMessage { return &ReserveRequest{} }},
		{"ReserveSummary", &ReserveSummary{Reserved: 4, TotalCents: 1 << 40}, func() wireMessage { return &ReserveSummary{} }},
		{"PriceQuery", &PriceQuery{SKU: "sku-7"}, func() wireMessage { return &PriceQuery{} }},
		{"PriceUpdate", &PriceUpdate{SKU: "sku-7", PriceCents: 1550}, func() wireMessage { return &PriceUpdate{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.empty()
			if err := got.readWire(tt.in.appendWire(nil)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWireFormat pins the bytes protoc-generated code would produce.
func TestWireFormat(t *testing.T) {
	tests := []struct {
		in   wireMessage
		want []byte
	}{
		{&GetItemRequest{SKU: "sku-42"}, []byte{0x0a, 6, 's', 'k', 'u', '-', '4', '2'}},
		{&ListItemsRequest{Limit: 3}, []byte{0x10, 3}},
		{&ReserveSummary{Reserved: 1, TotalCents: 300}, []byte{0x08, 1, 0x10, 0xac, 0x02}},
		{&GetItemRequest{}, nil},
	}
	for _, tt := range tests {
		if got := tt.in.appendWire(nil); !bytes.Equal(got, tt.want) {
			t.Errorf("%T: got % x, want % x", tt.in, got, tt.want)
		}
	}
}

func TestWireErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		msg  wireMessage
	}{
		{"truncated string", []byte{0x0a, 9, 's'}, &GetItemRequest{}},
		{"string field as varint", []byte{0x08, 1}, &GetItemRequest{}},
		{"varint field as bytes", []byte{0x12, 1, 'x'}, &ListItemsRequest{}},
		{"bad tag", []byte{0x00}, &Item{}},
		{"truncated varint", []byte{0x18, 0xff}, &Item{}},
	}
	for _, tt := range tests {
		if err := tt.msg.readWire(tt.in); err == nil {
			t.Errorf("%s: want error", tt.name)
		}
	}
	// Unknown fields are skipped, as protobuf requires.
	var q PriceQuery
	if err := q.readWire([]byte{0x0a, 1, 'a', 0x15, 1, 2, 3, 4, 0x18, 5}); err != nil || q.SKU != "a" {
		t.Errorf("unknown fields: got %+v, %v", q, err)
	}
}

func TestCodecProtoMessages(t *testing.T) {
	in := &healthpb.HealthCheckRequest{Service: "demo.Catalog"}
	b, err := wireCodec{}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(healthpb.HealthCheckRequest)
	if err := (wireCodec{}).Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Errorf("got %v, want %v", out, in)
	}
	if _, err := (wireCodec{}).Marshal(42); err == nil {
		t.Error("Marshal(int): want error")
	}
	if err := (wireCodec{}).Unmarshal(nil, new(int)); err == nil {
		t.Error("Unmarshal(*int): want error")
	}
}

// FuzzWireMessages feeds arbitrary bytes to every decoder: no panic, and
// whatever decodes re-encodes to something that decodes to the same value.
func FuzzWireMessages(f *testing.F) {
	f.Add((&Item{SKU: "sku-1", Name: "cup", PriceCents: 1200, Stock: 4, Tags: []string{"x"}}).appendWire(nil))
	f.Add((&ReserveRequest{SKU: "sku-2", Quantity: 7}).appendWire(nil))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x0b, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newMsg := range []func() wireMessage{
			func() wireMessage { return &GetItemRequest{} },
			func() wireMessage { return &Item{} },
			func() wireMessage { return &ListItemsRequest{} },
			func() wireMessage { return &ReserveRequest{} },
			func() wireMessage { return &ReserveSummary{} },
			func() wireMessage { return &PriceQuery{} },
			func() wireMessage { return &PriceUpdate{} },
		} {
			m := newMsg()
			if err := m.readWire(b); err != nil {
				continue
			}
			again := newMsg()
			if err := again.readWire(m.appendWire(nil)); err != nil {
				t.Fatalf("%T: re-decode: %v", m, err)
			}
			if diff := cmp.Diff(m, again); diff != "" {
				t.Fatalf("%T: re-encode changed the value:\n%s", m, diff)
			}
		}
	})
}
