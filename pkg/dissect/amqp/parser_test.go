package amqp

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
)

var ignoreSizes = cmpopts.IgnoreFields(row{}, "Req", "Resp")

// Property flags of the basic class.
const (
	propContentType   = 1 << 15
	propHeaders       = 1 << 13
	propDeliveryMode  = 1 << 12
	propCorrelationID = 1 << 10
	propMessageID     = 1 << 7
)

func handshake() []step {
	return []step{
		cs(0, protocolHeader),
		sc(1, methodFrame(0, 10, 10, u8(0), u8(9), table("product", "RabbitMQ", "version", "3.10.8"), lstr("AMQPLAIN PLAIN"), lstr("en_US"))),
		cs(2, methodFrame(0, 10, 11, table("product", "amqp091-go"), sstr("PLAIN"), lstr("\x00guest\x00hunter2"), sstr("en_US"))),
		sc(3, methodFrame(0, 10, 30, u16(2047), u32(131072), u16(60))),
		cs(4, methodFrame(0, 10, 31, u16(2047), u32(131072), u16(60)), methodFrame(0, 10, 40, sstr("/"), sstr(""), u8(0))),
		sc(5, methodFrame(0, 10, 41, sstr(""))),
		cs(6, methodFrame(1, 20, 10, sstr(""))),
		sc(7, methodFrame(1, 20, 11, lstr(""))),
	}
}

var handshakeRows = []row{
	{Method: "connection.start", Status: "connection.start-ok", Reply: "connection.start-ok", Props: map[string]string{
		"server.product": "RabbitMQ", "server.version": "3.10.8", "mechanisms": "AMQPLAIN PLAIN",
		"client.product": "amqp091-go", "mechanism": "PLAIN"}},
	{Method: "connection.tune", Status: "connection.tune-ok", Reply: "connection.tune-ok"},
	{Method: "connection.open", Path: "/", Status: "connection.open-ok", Reply: "connection.open-ok"},
	{Method: "channel.open", Status: "channel.open-ok", Reply: "channel.open-ok", Channel: 1},
}

func TestParser(t *testing.T) {
	tests := []struct {
		name    string
		steps   []step
		maxBody int
		want    []row
	}{{
		name: "publish, consume, errors",
		steps: append(handshake(),
			cs(10, methodFrame(1, 50, 10, u16(0), sstr("orders"), u8(0b0010), table())),
			sc(11, methodFrame(1, 50, 11, sstr("orders"), u32(0), u32(0))),
			cs(12, methodFrame(1, 60, 40, u16(0), sstr(""), sstr("orders"), u8(0)),
				headerFrame(1, 11, propContentType|propHeaders|propDeliveryMode|propMessageID, sstr("text/plain"), table("trace", "t-1"), u8(2), sstr("m-1")),
				bodyFrame(1, "hello "), bodyFrame(1, "world")),
			cs(13, methodFrame(1, 60, 20, u16(0), sstr("orders"), sstr(""), u8(0), table())),
			sc(14, methodFrame(1, 60, 21, sstr("ctag-1"))),
			sc(15, methodFrame(1, 60, 60, sstr("ctag-1"), u64(1), u8(0), sstr(""), sstr("orders")),
				headerFrame(1, 11, propContentType, sstr("text/plain")), bodyFrame(1, "hello world")),
			cs(16, methodFrame(1, 60, 80, u64(1), u8(0))),
			cs(17, methodFrame(1, 50, 10, u16(0), sstr("missing"), u8(0b0001), table())),
			sc(18, methodFrame(1, 20, 40, u16(404), sstr("NOT_FOUND - no queue 'missing' in vhost '/'"), u16(50), u16(10))),
			cs(19, methodFrame(1, 20, 41)),
			cs(20, methodFrame(0, 10, 50, u16(200), sstr("Goodbye"), u16(0), u16(0))),
			sc(21, methodFrame(0, 10, 51)),
		),
		maxBody: 1 << 10,
		want: append(append([]row{}, handshakeRows...),
			row{Method: "queue.declare", Path: "orders", Status: "queue.declare-ok", Reply: "queue.declare-ok", Channel: 1, Queue: "orders",
				Props: map[string]string{"message-count": "0", "consumer-count": "0"}},
			row{Method: "basic.publish", Path: "/orders", Channel: 1, RoutingKey: "orders", Body: "hello world", BodySize: 11,
				Props: map[string]string{"content-type": "text/plain", "headers.trace": "t-1", "delivery-mode": "2", "message-id": "m-1"}},
			row{Method: "basic.consume", Path: "orders", Status: "basic.consume-ok", Reply: "basic.consume-ok", Channel: 1, Queue: "orders", ConsumerTag: "ctag-1"},
			row{Method: "basic.deliver", Path: "/orders", Channel: 1, RoutingKey: "orders", ConsumerTag: "ctag-1", DeliveryTag: 1, Body: "hello world", BodySize: 11,
				Props: map[string]string{"content-type": "text/plain"}},
			row{Method: "basic.ack", Channel: 1, DeliveryTag: 1},
			row{Method: "queue.declare", Path: "missing", Status: "404 NOT_FOUND", Reply: "channel.close", Channel: 1, Queue: "missing",
				ReplyCode: 404, ReplyText: "NOT_FOUND - no queue 'missing' in vhost '/'"},
			row{Method: "channel.close", Path: "queue.declare", Status: "channel.close-ok", Reply: "channel.close-ok", Channel: 1,
				ReplyCode: 404, ReplyText: "NOT_FOUND - no queue 'missing' in vhost '/'"},
			row{Method: "connection.close", Status: "connection.close-ok", Reply: "connection.close-ok", ReplyCode: 200, ReplyText: "Goodbye"},
		),
	}, {
		name: "get, nowait, return, confirms",
		steps: append(handshake(),
			cs(10, methodFrame(1, 60, 70, u16(0), sstr("jobs"), u8(1))),
			sc(11, methodFrame(1, 60, 71, u64(7), u8(0), sstr("work"), sstr("jobs"), u32(3)), headerFrame(1, 0, 0)),
			cs(12, methodFrame(1, 60, 70, u16(0), sstr("jobs"), u8(1))),
			sc(13, methodFrame(1, 60, 72, sstr(""))),
			cs(14, methodFrame(1, 50, 20, u16(0), sstr("jobs"), sstr("work"), sstr("jobs.#"), u8(1), table())),
			cs(15, methodFrame(1, 85, 10, u8(0))),
			sc(16, methodFrame(1, 85, 11)),
			cs(17, methodFrame(1, 60, 40, u16(0), sstr("work"), sstr("nowhere"), u8(1)), headerFrame(1, 2, 0), bodyFrame(1, "{}")),
			sc(18, methodFrame(1, 60, 50, u16(312), sstr("NO_ROUTE"), sstr("work"), sstr("nowhere")), headerFrame(1, 2, 0), bodyFrame(1, "{}"),
				methodFrame(1, 60, 80, u64(1), u8(0))),
		),
		maxBody: 1 << 10,
		want: append(append([]row{}, handshakeRows...),
			row{Method: "basic.get", Path: "jobs", Status: "basic.get-ok", Reply: "basic.get-ok", Channel: 1, Queue: "jobs", Exchange: "work", RoutingKey: "jobs", DeliveryTag: 7},
			row{Method: "basic.get", Path: "jobs", Status: "basic.get-empty", Reply: "basic.get-empty", Channel: 1, Queue: "jobs"},
			row{Method: "queue.bind", Path: "jobs", Channel: 1, Queue: "jobs", Exchange: "work", RoutingKey: "jobs.#"},
			row{Method: "confirm.select", Status: "confirm.select-ok", Reply: "confirm.select-ok", Channel: 1},
			row{Method: "basic.publish", Path: "work/nowhere", Channel: 1, Exchange: "work", RoutingKey: "nowhere", Body: "{}", BodySize: 2},
			row{Method: "basic.return", Path: "work/nowhere", Status: "312 NO_ROUTE", Channel: 1, Exchange: "work", RoutingKey: "nowhere",
				ReplyCode: 312, ReplyText: "NO_ROUTE", Body: "{}", BodySize: 2},
			row{Method: "basic.ack", Channel: 1, DeliveryTag: 1},
		),
	}, {
		name: "body bounds and binary",
		steps: []step{
			cs(0, methodFrame(2, 60, 40, u16(0), sstr("x"), sstr("bin"), u8(0)), headerFrame(2, 4, 0), bodyFrame(2, "\xff\x00\x01\x02")),
			cs(1, methodFrame(2, 60, 40, u16(0), sstr("x"), sstr("big"), u8(0)), headerFrame(2, 3000, 0),
				bodyFrame(2, strings.Repeat("a", 1500)), bodyFrame(2, strings.Repeat("b", 1500))),
		},
		maxBody: 8,
		want: []row{
			{Method: "basic.publish", Path: "x/bin", Channel: 2, Exchange: "x", RoutingKey: "bin", Body: "/wABAg==", Encoding: "base64", BodySize: 4},
			{Method: "basic.publish", Path: "x/big", Channel: 2, Exchange: "x", RoutingKey: "big", Body: "aaaaaaaa", BodySize: 3000, Truncated: true},
		},
	}, {
		name: "mid-connection and unanswered",
		steps: []step{
			sc(0, methodFrame(1, 50, 11, sstr("q"), u32(0), u32(0))), // answers a request the capture missed
			sc(1, bodyFrame(1, "orphan")),
			cs(2, methodFrame(1, 60, 10, u32(0), u16(10), u8(0))),
		},
		want: []row{{Method: "basic.qos", Channel: 1, Error: "no response"}},
	}}
	for _, tt := range tests {
		for cname, ch := range chunkings() {
			t.Run(tt.name+"/"+cname, func(t *testing.T) {
				es, _ := run(tt.steps, ch, tt.maxBody)
				var got []row
				for _, e := range es {
					got = append(got, rowOf(e))
				}
				if diff := cmp.Diff(tt.want, got, ignoreSizes, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("entries (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestSizes checks that an entry counts the frames of both directions.
func TestSizes(t *testing.T) {
	req := methodFrame(1, 50, 10, u16(0), sstr("orders"), u8(0), table())
	resp := methodFrame(1, 50, 11, sstr("orders"), u32(5), u32(1))
	pub := cat(methodFrame(1, 60, 40, u16(0), sstr(""), sstr("orders"), u8(0)), headerFrame(1, 5, 0), bodyFrame(1, "hello"))
	es, st := run([]step{cs(0, req), sc(3, resp), cs(4, pub)}, chunkings()["random"], 100)
	if len(es) != 2 || st.Dropped != 0 {
		t.Fatalf("%d entries, %+v", len(es), st)
	}
	if got := es[0].Size; got.Request != int64(len(req)) || got.Response != int64(len(resp)) || es[0].ElapsedUS != 3000 {
		t.Errorf("declare size %+v elapsed %d", got, es[0].ElapsedUS)
	}
	if got := es[1].Size; got.Request != int64(len(pub)) || got.Response != 0 {
		t.Errorf("publish size %+v", got)
	}
}

func TestGap(t *testing.T) {
	steps := append(handshake(),
		cs(10, methodFrame(1, 50, 10, u16(0), sstr("a"), u8(0), table())),
		dissecttest.GapStep(dissect.ServerToClient, 40),
		sc(11, []byte("xx"), methodFrame(1, 50, 11, sstr("b"), u32(0), u32(0))), // tail of a lost frame; a reply with no request left
		cs(12, methodFrame(1, 50, 10, u16(0), sstr("c"), u8(0), table())),
		sc(13, methodFrame(1, 50, 11, sstr("c"), u32(0), u32(0))),
	)
	es, st := run(steps, chunkings()["whole"], 100)
	var got []row
	for _, e := range es[len(handshakeRows):] {
		got = append(got, rowOf(e))
	}
	want := []row{
		{Method: "queue.declare", Path: "a", Error: "capture gap", Channel: 1, Queue: "a"},
		{Method: "queue.declare", Path: "c", Status: "queue.declare-ok", Reply: "queue.declare-ok", Channel: 1, Queue: "c",
			Props: map[string]string{"message-count": "0", "consumer-count": "0"}},
	}
	if diff := cmp.Diff(want, got, ignoreSizes); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st.Resyncs != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		want       dissect.Verdict
		fromClient bool
	}{
		{"protocol header", protocolHeader, dissect.Yes, true},
		{"header cut short", protocolHeader[:5], dissect.Maybe, true},
		{"amqp 1.0", []byte("AMQP\x00\x01\x00\x00"), dissect.No, false},
		{"connection.start", methodFrame(0, 10, 10, u8(0), u8(9), table(), lstr("PLAIN"), lstr("en_US")), dissect.Yes, false},
		{"basic.publish", methodFrame(1, 60, 40, u16(0), sstr(""), sstr("q"), u8(0)), dissect.Yes, true},
		{"basic.ack", methodFrame(1, 60, 80, u64(1), u8(0)), dissect.Maybe, false},
		{"heartbeat", frameOf(frameHeartbeat, 0, nil), dissect.Maybe, false},
		{"bad frame end", append(methodFrame(1, 60, 40)[:11], 0), dissect.No, false},
		{"unknown method", methodFrame(1, 60, 99), dissect.No, false},
		{"partial frame", methodFrame(1, 60, 40, u16(0), sstr("exchange"))[:12], dissect.Maybe, false},
		{"http", []byte("GET / HTTP/1.1\r\n"), dissect.No, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, from := Detect(tt.data)
			if v != tt.want || (v == dissect.Yes && from != tt.fromClient) {
				t.Errorf("Detect = %v, %v; want %v, %v", v, from, tt.want, tt.fromClient)
			}
		})
	}
}
