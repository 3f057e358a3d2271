package main

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The demo.Catalog messages, encoded by hand with protowire so the service
// needs no protoc. Their wire form is what this .proto would generate:
//
//	message GetItemRequest   { string sku = 1; }
//	message Item             { string sku = 1; string name = 2; int64 price_cents = 3;
//	                           int32 stock = 4; repeated string tags = 5; }
//	message ListItemsRequest { string category = 1; int32 limit = 2; }
//	message ReserveRequest   { string sku = 1; int32 quantity = 2; }
//	message ReserveSummary   { int32 reserved = 1; int64 total_cents = 2; }
//	message PriceQuery       { string sku = 1; }
//	message PriceUpdate      { string sku = 1; int64 price_cents = 2; }

// wireMessage is a message that encodes itself in protobuf wire format.
type wireMessage interface {
	appendWire(b []byte) []byte
	readWire(b []byte) error
}

type GetItemRequest struct{ SKU string }

type Item struct {
	SKU        string
	Name       string
	PriceCents int64
	Stock      int32
	Tags       []string
}

type ListItemsRequest struct {
	Category string
	Limit    int32
}

type ReserveRequest struct {
	SKU      string
	Quantity int32
}

type ReserveSummary struct {
	Reserved   int32
	TotalCents int64
}

type PriceQuery struct{ SKU string }

type PriceUpdate struct {
	SKU        string
	PriceCents int64
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// wireField is one decoded field: a varint, or the bytes of a length-
// delimited value.
type wireField struct {
	num    protowire.Number
	typ    protowire.Type
	varint uint64
	bytes  []byte
}

// eachField calls fn for every field of b, skipping field types the demo
// messages never use.
func eachField(b []byte, fn func(f wireField) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := wireField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType {
			if err := fn(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// want checks that a known field has the wire type its .proto declares.
func (f wireField) want(typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("field %d: wire type %d, want %d", f.num, f.typ, typ)
	}
	return nil
}

func (m *GetItemRequest) appendWire(b []byte) []byte { return appendString(b, 1, m.SKU) }

func (m *GetItemRequest) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		if f.num == 1 {
			m.SKU = string(f.bytes)
			return f.want(protowire.BytesType)
		}
		return nil
	})
}

func (m *Item) appendWire(b []byte) []byte {
	b = appendString(b, 1, m.SKU)
	b = appendString(b, 2, m.Name)
	b = appendInt(b, 3, m.PriceCents)
	b = appendInt(b, 4, int64(m.Stock))
	for _, t := range m.Tags {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	return b
}

func (m *Item) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		switch f.num {
		case 1:
			m.SKU = string(f.bytes)
		case 2:
			m.Name = string(f.bytes)
		case 3:
			m.PriceCents = int64(f.varint)
			return f.want(protowire.VarintType)
		case 4:
			m.Stock = int32(f.varint)
			return f.want(protowire.VarintType)
		case 5:
			m.Tags = append(m.Tags, string(f.bytes))
		default:
			return nil
		}
		return f.want(protowire.BytesType)
	})
}

func (m *ListItemsRequest) appendWire(b []byte) []byte {
	b = appendString(b, 1, m.Category)
	return appendInt(b, 2, int64(m.Limit))
}

func (m *ListItemsRequest) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		switch f.num {
		case 1:
			m.Category = string(f.bytes)
			return f.want(protowire.BytesType)
		case 2:
			m.Limit = int32(f.varint)
			return f.want(protowire.VarintType)
		}
		return nil
	})
}

func (m *ReserveRequest) appendWire(b []byte) []byte {
	b = appendString(b, 1, m.SKU)
	return appendInt(b, 2, int64(m.Quantity))
}

func (m *ReserveRequest) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		switch f.num {
		case 1:
			m.SKU = string(f.bytes)
			return f.want(protowire.BytesType)
		case 2:
			m.Quantity = int32(f.varint)
			return f.want(protowire.VarintType)
		}
		return nil
	})
}

func (m *ReserveSummary) appendWire(b []byte) []byte {
	b = appendInt(b, 1, int64(m.Reserved))
	return appendInt(b, 2, m.TotalCents)
}

func (m *ReserveSummary) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		switch f.num {
		case 1:
			m.Reserved = int32(f.varint)
		case 2:
			m.TotalCents = int64(f.varint)
		default:
			return nil
		}
		return f.want(protowire.VarintType)
	})
}

func (m *PriceQuery) appendWire(b []byte) []byte { return appendString(b, 1, m.SKU) }

func (m *PriceQuery) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		if f.num == 1 {
			m.SKU = string(f.bytes)
			return f.want(protowire.BytesType)
		}
		return nil
	})
}

func (m *PriceUpdate) appendWire(b []byte) []byte {
	b = appendString(b, 1, m.SKU)
	return appendInt(b, 2, m.PriceCents)
}

func (m *PriceUpdate) readWire(b []byte) error {
	return eachField(b, func(f wireField) error {
		switch f.num {
		case 1:
			m.SKU = string(f.bytes)
			return f.want(protowire.BytesType)
		case 2:
			m.PriceCents = int64(f.varint)
			return f.want(protowire.VarintType)
		}
		return nil
	})
}

// wireCodec is gRPC's "proto" codec for both the hand-encoded demo
// messages and generated ones (grpc.health.v1), so one server serves both
// and the content-type stays application/grpc.
type wireCodec struct{}

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case wireMessage:
		return m.appendWire(nil), nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("wireCodec: cannot marshal %T", v)
}

func (wireCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case wireMessage:
		return m.readWire(data)
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("wireCodec: cannot unmarshal into %T", v)
}
