package grpc

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// msg builds a message from alternating appenders, for readable tests.
func msg(parts ...func([]byte) []byte) []byte {
	var b []byte
	for _, p := range parts {
		b = p(b)
	}
	return b
}

func str(num protowire.Number, s string) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, s)
	}
}

func raw(num protowire.Number, v []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
}

func varint(num protowire.Number, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
}

func fixed64(num protowire.Number, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, v)
	}
}

func fixed32(num protowire.Number, v uint32) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.Fixed32Type)
		return protowire.AppendFixed32(b, v)
	}
}

func group(num protowire.Number, inner []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.StartGroupType)
		b = append(b, inner...)
		return protowire.AppendTag(b, num, protowire.EndGroupType)
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRenderProto(t *testing.T) {
	nested := msg(varint(1, 7), str(2, "x"))
	deep := msg(varint(1, 1))
	for i := 0; i < 12; i++ {
		deep = msg(raw(1, deep))
	}
	tests := []struct {
		name      string
		in        []byte
		want      string
		truncated bool
	}{
		{"empty", nil, "", false},
		{"brief example", msg(str(1, "alice"), varint(2, 42), raw(3, nested), fixed64(4, math.Float64bits(1))),
			`1: "alice" 2: 42 3: {1: 7 2: "x"} 4: 0x3ff0000000000000`, false},
		{"fixed32", msg(fixed32(5, 0xdeadbeef)), "5: 0xdeadbeef", false},
		{"max varint is unsigned", msg(varint(1, math.MaxUint64)), "1: 18446744073709551615", false},
		{"empty bytes", msg(raw(1, nil)), `1: ""`, false},
		{"unicode and quotes", msg(str(1, "ünï \"q\"\n")), `1: "ünï \"q\"\n"`, false},
		{"binary bytes", msg(raw(1, []byte{0xff, 0x00, 0x80})), "1: <ff0080>", false},
		{"long binary preview", msg(raw(9, append([]byte{0xff}, make([]byte, 39)...))),
			"9: <ff" + strings.Repeat("00", 31) + "... (40 bytes)>", false},
		{"group", msg(group(2, msg(varint(1, 3))), varint(3, 4)), "2: {1: 3} 3: 4", false},
		{"high field number", msg(varint(536870911, 1)), "536870911: 1", false},
		{"repeated", msg(varint(1, 1), varint(1, 2)), "1: 1 1: 2", false},
		{"cut short keeps whole fields", msg(str(1, "alice"), varint(2, 42), str(3, "bob"))[:12],
			`1: "alice" 2: 42 3: "b"`, true},
		{"cut inside a string", msg(varint(1, 7), str(2, "a long string"))[:8], `1: 7 2: "a lo"`, true},
		{"cut inside the first string", msg(str(1, "a long string"))[:7], `1: "a lon"`, true},
		{"plain text is not a message", []byte(`{"name":"alice"}`), `"{\"name\":\"alice\"}"`, false},
		{"garbage", []byte{0xff, 0xff}, "<ffff>", false},
		{"field zero is invalid", []byte{0x00, 0x01}, "<0001>", false},
		{"depth bound", deep, strings.Repeat("1: {", 7) + "1: <0a080a060a040a020801>" + strings.Repeat("}", 7), false},
		{"wrappers.StringValue", mustMarshal(t, wrapperspb.String("hello")), `1: "hello"`, false},
		{"Duration", mustMarshal(t, durationpb.New(1500e6)), "1: 1 2: 500000000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := RenderProto(tt.in, 4096)
			if got != tt.want || truncated != tt.truncated {
				t.Errorf("RenderProto(%x) = %q, %v; want %q, %v", tt.in, got, truncated, tt.want, tt.truncated)
			}
		})
	}
}

func TestRenderProtoStruct(t *testing.T) {
	s, err := structpb.NewStruct(map[string]any{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	got, truncated := RenderProto(mustMarshal(t, s), 4096)
	// Struct{fields: map<string, Value>}: entry{1: key, 2: Value{3: string_value}}.
	want := `1: {1: "k" 2: {3: "v"}}`
	if got != want || truncated {
		t.Errorf("got %q, %v; want %q", got, truncated, want)
	}
}

func TestRenderProtoBounds(t *testing.T) {
	var parts []func([]byte) []byte
	for i := 0; i < 1000; i++ {
		parts = append(parts, str(1, "some fairly long value ü"))
	}
	in := msg(parts...)
	for _, max := range []int{1, 2, 10, 33, 100, 1000} {
		got, truncated := RenderProto(in, max)
		if len(got) > max || !truncated || !utf8.ValidString(got) {
			t.Errorf("max %d: len %d truncated %v valid %v", max, len(got), truncated, utf8.ValidString(got))
		}
	}
	if got, truncated := RenderProto(in, 0); got != "" || !truncated {
		t.Errorf("max 0: %q %v", got, truncated)
	}
	long := msg(str(1, strings.Repeat("a", 5000)))
	got, truncated := RenderProto(long, 64)
	if !truncated || !strings.HasPrefix(got, `1: "aaaa`) || len(got) > 64 {
		t.Errorf("long string: %q %v", got, truncated)
	}
}

// TestRenderDescriptor renders a real nested message and spot-checks it.
func TestRenderDescriptor(t *testing.T) {
	fd := mustMarshal(t, protodesc.ToFileDescriptorProto(wrapperspb.File_google_protobuf_wrappers_proto))
	got, truncated := RenderProto(fd, 1<<20)
	for _, want := range []string{`1: "google/protobuf/wrappers.proto"`, `2: "google.protobuf"`, `4: {1: "DoubleValue" 2: {1: "value" 3: 1 4: 1 5: 1 10: "value"}}`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in %s", want, got)
		}
	}
	if truncated {
		t.Error("truncated")
	}
}

func TestCodeName(t *testing.T) {
	for code, want := range map[int]string{0: "OK", 1: "CANCELLED", 5: "NOT_FOUND", 16: "UNAUTHENTICATED", 17: "CODE_17", -1: "CODE_-1"} {
		if got := CodeName(code); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, want)
		}
	}
}

func FuzzRenderProto(f *testing.F) {
	f.Add(msg(str(1, "alice"), varint(2, 42), raw(3, msg(varint(1, 7), str(2, "x"))), fixed64(4, 1)), 256)
	f.Add(msg(group(2, msg(varint(1, 3)))), 64)
	f.Add(mustMarshal(f, wrapperspb.String("hello")), 16)
	f.Add([]byte(`{"json":true}`), 8)
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x10}, 1024)
	// A real, deeply nested message: the descriptor of wrappers.proto.
	fd := mustMarshal(f, protodesc.ToFileDescriptorProto(wrapperspb.File_google_protobuf_wrappers_proto))
	f.Add(fd, 1<<16-1)
	f.Add(fd[:len(fd)/2], 300)
	f.Fuzz(func(t *testing.T, b []byte, maxOut int) {
		maxOut %= 1 << 16
		got, truncated := RenderProto(b, maxOut)
		if maxOut > 0 && len(got) > maxOut {
			t.Fatalf("output %d bytes > max %d", len(got), maxOut)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 output %q", got)
		}
		if len(b) == 0 && (got != "" || truncated) {
			t.Fatalf("empty input gave %q %v", got, truncated)
		}
	})
}
