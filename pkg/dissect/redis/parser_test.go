package redis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
)

var ignoreSizes = cmpopts.IgnoreFields(row{}, "ElapsedMS", "Req", "Resp")

func TestParser(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []row
	}{{
		name: "pipelined in one segment",
		steps: []step{
			cs(0, cmdOf("SET", "user:1", "alice")+cmdOf("GET", "user:1")+cmdOf("GET", "nope")+cmdOf("INCR", "n")+cmdOf("LPUSH", "l", "a")),
			sc(2, "+OK\r\n"+bulk("alice")+"$-1\r\n:7\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
		},
		want: []row{
			{Method: "SET", Path: "user:1", Status: "OK", Args: []string{"user:1", "alice"}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "GET", Path: "user:1", Status: "bulk", Args: []string{"user:1"}, Reply: "alice", Type: "bulk", Proto: 2},
			{Method: "GET", Path: "nope", Status: "nil", Args: []string{"nope"}, Reply: "(nil)", Type: "bulk", Proto: 2},
			{Method: "INCR", Path: "n", Status: "integer", Args: []string{"n"}, Reply: "7", Type: "integer", Proto: 2},
			{Method: "LPUSH", Path: "l", Status: "WRONGTYPE", Args: []string{"l", "a"}, Reply: "WRONGTYPE Operation against a key holding the wrong kind of value", Type: "error", Proto: 2},
		},
	}, {
		name: "inline commands",
		steps: []step{
			cs(0, "PING\r\n\r\nset k \"two words\"\r\nget k\n"),
			sc(1, "+PONG\r\n+OK\r\n$9\r\ntwo words\r\n"),
		},
		want: []row{
			{Method: "PING", Status: "simple", Args: []string{}, Reply: "PONG", Type: "simple", Proto: 2},
			{Method: "SET", Path: "k", Status: "OK", Args: []string{"k", "two words"}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "GET", Path: "k", Status: "bulk", Args: []string{"k"}, Reply: "two words", Type: "bulk", Proto: 2},
		},
	}, {
		name: "arrays and containers",
		steps: []step{
			cs(0, cmdOf("LRANGE", "l", "0", "-1")+cmdOf("CONFIG", "get", "maxmemory")+cmdOf("EVAL", "return 1", "1", "k1")+cmdOf("XREAD", "COUNT", "1", "STREAMS", "s1", "0")+cmdOf("KEYS", "*")),
			sc(1, "*3\r\n$1\r\na\r\n$1\r\nb\r\n:3\r\n*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n:1\r\n*-1\r\n*0\r\n"),
		},
		want: []row{
			{Method: "LRANGE", Path: "l", Status: "array", Args: []string{"l", "0", "-1"}, Reply: `["a", "b", 3]`, Type: "array", Proto: 2},
			{Method: "CONFIG GET", Path: "maxmemory", Status: "array", Args: []string{"get", "maxmemory"}, Reply: `["maxmemory", "0"]`, Type: "array", Proto: 2},
			{Method: "EVAL", Path: "k1", Status: "integer", Args: []string{"return 1", "1", "k1"}, Reply: "1", Type: "integer", Proto: 2},
			{Method: "XREAD", Path: "s1", Status: "nil", Args: []string{"COUNT", "1", "STREAMS", "s1", "0"}, Reply: "(nil)", Type: "array", Proto: 2},
			{Method: "KEYS", Status: "array", Args: []string{"*"}, Reply: "[]", Type: "array", Proto: 2},
		},
	}, {
		name: "RESP3 after HELLO 3",
		steps: []step{
			cs(0, cmdOf("HELLO", "3", "AUTH", "default", "s3cret")),
			sc(1, "%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"),
			cs(2, cmdOf("GET", "missing")+cmdOf("HGETALL", "h")+cmdOf("ZSCORE", "z", "m")+cmdOf("SMEMBERS", "s")+cmdOf("EXISTS", "k")),
			sc(3, "_\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n,1.5\r\n~2\r\n$1\r\nx\r\n$1\r\ny\r\n|1\r\n+ttl\r\n:3\r\n#t\r\n"),
		},
		want: []row{
			{Method: "HELLO", Status: "map", Args: []string{"3", "AUTH", "default", "[redacted]"}, Reply: `{"server": "redis", "proto": 3}`, Type: "map", Proto: 3},
			{Method: "GET", Path: "missing", Status: "nil", Args: []string{"missing"}, Reply: "(nil)", Type: "null", Proto: 3},
			{Method: "HGETALL", Path: "h", Status: "map", Args: []string{"h"}, Reply: `{"f": "v"}`, Type: "map", Proto: 3},
			{Method: "ZSCORE", Path: "z", Status: "double", Args: []string{"z", "m"}, Reply: "1.5", Type: "double", Proto: 3},
			{Method: "SMEMBERS", Path: "s", Status: "set", Args: []string{"s"}, Reply: `["x", "y"]`, Type: "set", Proto: 3},
			{Method: "EXISTS", Path: "k", Status: "boolean", Args: []string{"k"}, Reply: "t", Type: "boolean", Proto: 3},
		},
	}, {
		name: "RESP2 pub/sub",
		steps: []step{
			cs(0, cmdOf("SUBSCRIBE", "news", "sport")),
			sc(1, "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n"),
			sc(5, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"),
			cs(6, cmdOf("PSUBSCRIBE", "n*")),
			sc(7, "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"),
			cs(8, cmdOf("UNSUBSCRIBE")+cmdOf("PING")),
			sc(9, "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
			cs(10, cmdOf("PUNSUBSCRIBE", "n*")),
			sc(11, "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n"),
		},
		want: []row{
			{Method: "SUBSCRIBE", Path: "news", Status: "array", Args: []string{"news", "sport"}, Reply: `["subscribe", "sport", 2]`, Type: "array", Proto: 2},
			{Method: "message", Path: "news", Status: "push", Channel: "news", Reply: "hello", Type: "array", Proto: 2},
			{Method: "PSUBSCRIBE", Path: "n*", Status: "array", Args: []string{"n*"}, Reply: `["psubscribe", "n*", 3]`, Type: "array", Proto: 2},
			{Method: "pmessage", Path: "news", Status: "push", Args: []string{"n*"}, Channel: "news", Reply: "hi", Type: "array", Proto: 2},
			// A no-channel UNSUBSCRIBE leaves the pattern: the count stays
			// above 0, and the PING's pong ends it.
			{Method: "UNSUBSCRIBE", Status: "array", Args: []string{}, Reply: `["unsubscribe", "sport", 1]`, Type: "array", Proto: 2},
			{Method: "PING", Status: "array", Args: []string{}, Reply: `["pong", ""]`, Type: "array", Proto: 2},
			{Method: "PUNSUBSCRIBE", Path: "n*", Status: "array", Args: []string{"n*"}, Reply: `["punsubscribe", "n*", 0]`, Type: "array", Proto: 2},
		},
	}, {
		name: "RESP3 pushes",
		steps: []step{
			cs(0, cmdOf("SUBSCRIBE", "orders")),
			sc(1, ">3\r\n$9\r\nsubscribe\r\n$6\r\norders\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$6\r\norders\r\n$2\r\n{}\r\n"),
			cs(2, cmdOf("GET", "k")),
			sc(3, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"+bulk("v")),
		},
		want: []row{
			{Method: "SUBSCRIBE", Path: "orders", Status: "push", Args: []string{"orders"}, Reply: `["subscribe", "orders", 1]`, Type: "push", Proto: 3},
			{Method: "message", Path: "orders", Status: "push", Channel: "orders", Reply: "{}", Type: "push", Proto: 3},
			{Method: "invalidate", Status: "push", Reply: `["invalidate", (array 1)]`, Type: "push", Proto: 3},
			{Method: "GET", Path: "k", Status: "bulk", Args: []string{"k"}, Reply: "v", Type: "bulk", Proto: 3},
		},
	}, {
		name: "transaction",
		steps: []step{
			cs(0, cmdOf("MULTI")+cmdOf("INCR", "a")+cmdOf("INCR", "b")+cmdOf("EXEC")),
			sc(1, "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n:1\r\n"),
		},
		want: []row{
			{Method: "MULTI", Status: "OK", Args: []string{}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "INCR", Path: "a", Status: "simple", Args: []string{"a"}, Reply: "QUEUED", Type: "simple", Proto: 2},
			{Method: "INCR", Path: "b", Status: "simple", Args: []string{"b"}, Reply: "QUEUED", Type: "simple", Proto: 2},
			{Method: "EXEC", Status: "array", Args: []string{}, Reply: "[1, 1]", Type: "array", Proto: 2},
		},
	}, {
		name: "credentials redacted",
		steps: []step{
			cs(0, cmdOf("AUTH", "admin", "hunter2")+cmdOf("CONFIG", "SET", "requirepass", "pw", "maxmemory", "1mb")+cmdOf("ACL", "SETUSER", "bob", "on", ">pw2", "~*")),
			sc(1, "+OK\r\n+OK\r\n+OK\r\n"),
		},
		want: []row{
			{Method: "AUTH", Status: "OK", Args: []string{"[redacted]", "[redacted]"}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "CONFIG SET", Path: "requirepass", Status: "OK", Args: []string{"SET", "requirepass", "[redacted]", "maxmemory", "1mb"}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "ACL SETUSER", Path: "bob", Status: "OK", Args: []string{"SETUSER", "bob", "on", "[redacted]", "~*"}, Reply: "OK", Type: "simple", Proto: 2},
		},
	}, {
		name: "client reply off and skip",
		steps: []step{
			cs(0, cmdOf("CLIENT", "REPLY", "SKIP")+cmdOf("SET", "a", "1")+cmdOf("SET", "b", "2")),
			sc(1, "+OK\r\n"),
			cs(2, cmdOf("CLIENT", "REPLY", "OFF")+cmdOf("SET", "c", "3")+cmdOf("CLIENT", "REPLY", "ON")),
			sc(3, "+OK\r\n"),
		},
		want: []row{
			{Method: "CLIENT REPLY", Path: "SKIP", Status: "noreply", Args: []string{"REPLY", "SKIP"}},
			{Method: "SET", Path: "a", Status: "noreply", Args: []string{"a", "1"}},
			{Method: "SET", Path: "b", Status: "OK", Args: []string{"b", "2"}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "CLIENT REPLY", Path: "OFF", Status: "noreply", Args: []string{"REPLY", "OFF"}},
			{Method: "SET", Path: "c", Status: "noreply", Args: []string{"c", "3"}},
			{Method: "CLIENT REPLY", Path: "ON", Status: "OK", Args: []string{"REPLY", "ON"}, Reply: "OK", Type: "simple", Proto: 2},
		},
	}, {
		name: "monitor",
		steps: []step{
			cs(0, cmdOf("MONITOR")),
			sc(1, "+OK\r\n+1700000000.123 [0 127.0.0.1:5000] \"GET\" \"k\"\r\n"),
		},
		want: []row{
			{Method: "MONITOR", Status: "OK", Args: []string{}, Reply: "OK", Type: "simple", Proto: 2},
			{Method: "monitor", Status: "push", Reply: `1700000000.123 [0 127.0.0.1:5000] "GET" "k"`, Type: "simple", Proto: 2},
		},
	}, {
		name: "streamed RESP3 values",
		steps: []step{
			cs(0, cmdOf("GET", "a")+cmdOf("LRANGE", "l", "0", "1")),
			sc(1, "$?\r\n;3\r\nhel\r\n;2\r\nlo\r\n;0\r\n*?\r\n:1\r\n:2\r\n.\r\n"),
		},
		want: []row{
			{Method: "GET", Path: "a", Status: "bulk", Args: []string{"a"}, Reply: "hello", Type: "bulk", Proto: 2},
			{Method: "LRANGE", Path: "l", Status: "array", Args: []string{"l", "0", "1"}, Reply: "[1, 2]", Type: "array", Proto: 2},
		},
	}, {
		name: "unanswered and unasked",
		steps: []step{
			sc(0, "+OK\r\n"), // a reply to a command before the capture
			cs(1, cmdOf("BLPOP", "q", "0")),
		},
		want: []row{
			{Method: "BLPOP", Path: "q", Error: "no response", Args: []string{"q", "0"}},
		},
	}}
	for _, tt := range tests {
		for cname, ch := range chunkings() {
			t.Run(tt.name+"/"+cname, func(t *testing.T) {
				es, _ := run(tt.steps, ch)
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

// TestSizesAndTimes checks wire sizes, timestamps and a bulk string far
// larger than what is kept.
func TestSizesAndTimes(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	req := cmdOf("SET", "big", big) + cmdOf("GET", "big")
	resp := "+OK\r\n" + bulk(big)
	for cname, ch := range chunkings() {
		t.Run(cname, func(t *testing.T) {
			es, st := run([]step{cs(10, req), sc(35, resp)}, ch)
			got := []row{rowOf(es[0]), rowOf(es[1])}
			cut := strings.Repeat("x", maxElem) + "…"
			want := []row{
				{Method: "SET", Path: "big", Status: "OK", Args: []string{"big", cut}, Reply: "OK", Type: "simple", Proto: 2,
					ElapsedMS: 25, Req: int64(len(cmdOf("SET", "big", big))), Resp: 5},
				{Method: "GET", Path: "big", Status: "bulk", Args: []string{"big"}, Reply: cut, Type: "bulk", Proto: 2,
					ElapsedMS: 25, Req: int64(len(cmdOf("GET", "big"))), Resp: int64(len(bulk(big)))},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if st.Entries != 2 || st.Dropped != 0 || st.Resyncs != 0 {
				t.Errorf("stats %+v", st)
			}
			if !es[0].TS.Equal(at(10)) {
				t.Errorf("ts %v", es[0].TS)
			}
		})
	}
}

// TestPipeline500 sends 500 commands in one write, as redis-cli --pipe
// does, and expects 500 entries.
func TestPipeline500(t *testing.T) {
	var req, resp strings.Builder
	for i := range 500 {
		req.WriteString(cmdOf("SET", "key:"+strconv.Itoa(i), "v"))
		resp.WriteString("+OK\r\n")
	}
	es, st := run([]step{cs(0, req.String()), sc(1, resp.String())}, chunkings()["random"])
	if len(es) != 500 || st.Dropped != 0 {
		t.Fatalf("%d entries, stats %+v", len(es), st)
	}
	for i, e := range es {
		if e.Path != "key:"+strconv.Itoa(i) || e.Status != "OK" {
			t.Fatalf("entry %d: %s %s %s", i, e.Method, e.Path, e.Status)
		}
	}
}

// TestGap checks that a gap fails the waiting commands and that pairing
// resumes with the next command.
func TestGap(t *testing.T) {
	steps := []step{
		cs(0, cmdOf("GET", "a")+cmdOf("GET", "b")),
		sc(1, bulk("1")),
		dissecttest.GapStep(dissect.ServerToClient, 100),
		sc(2, "0123456789\r\n"+bulk("late")), // the rest of a lost reply, then one for GET b
		cs(3, cmdOf("GET", "c")),
		sc(4, bulk("3")),
	}
	es, st := run(steps, chunkings()["whole"])
	var got []row
	for _, e := range es {
		got = append(got, rowOf(e))
	}
	want := []row{
		{Method: "GET", Path: "a", Status: "bulk", Args: []string{"a"}, Reply: "1", Type: "bulk", Proto: 2},
		{Method: "GET", Path: "b", Error: "capture gap", Args: []string{"b"}},
		{Method: "GET", Path: "c", Status: "bulk", Args: []string{"c"}, Reply: "3", Type: "bulk", Proto: 2},
	}
	if diff := cmp.Diff(want, got, ignoreSizes); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st.Resyncs != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestQueueCap checks that commands past the cap are counted, not held,
// and that their replies do not shift the pairing of later commands.
func TestQueueCap(t *testing.T) {
	var req, resp strings.Builder
	for i := range maxPending + 10 {
		req.WriteString(cmdOf("GET", "k"+strconv.Itoa(i)))
		resp.WriteString(":" + strconv.Itoa(i) + "\r\n")
	}
	es, st := run([]step{cs(0, req.String()), sc(1, resp.String()), cs(2, cmdOf("GET", "last")), sc(3, bulk("L"))}, chunkings()["whole"])
	if len(es) != maxPending+1 || st.Dropped != 10*2 {
		t.Fatalf("%d entries, stats %+v", len(es), st)
	}
	if last := es[len(es)-1]; last.Path != "last" || last.Redis.Reply != "L" {
		t.Errorf("last entry %s %q", last.Path, last.Redis.Reply)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		want       dissect.Verdict
		fromClient bool
	}{
		{"command", cmdOf("GET", "k"), dissect.Yes, true},
		{"lower case command", cmdOf("hgetall", "k"), dissect.Yes, true},
		{"command cut short", "*2\r\n$3\r\nGE", dissect.Maybe, true},
		{"array start", "*2", dissect.Maybe, true},
		{"unknown command", cmdOf("FROB", "k"), dissect.No, false},
		{"array of integers", "*2\r\n:1\r\n:2\r\n", dissect.No, false},
		{"hello 3 reply", "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n", dissect.Yes, false},
		{"ok", "+OK\r\n", dissect.Maybe, false},
		{"error", "-ERR unknown command\r\n", dissect.Maybe, false},
		{"bad integer", ":12a\r\n", dissect.No, false},
		{"inline ping", "PING\r\n", dissect.Maybe, true},
		{"inline partial", "PIN", dissect.Maybe, true},
		{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", dissect.Maybe, true},
		{"tls", "\x16\x03\x01\x02\x00\x01", dissect.No, false},
		{"postgres startup", "\x00\x00\x00\x08\x04\xd2\x16\x2f", dissect.No, false},
		{"bare LF", "*2\n$3\nGET\n", dissect.No, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, from := Detect([]byte(tt.data))
			if v != tt.want || (v == dissect.Yes && from != tt.fromClient) {
				t.Errorf("Detect = %v, %v; want %v, %v", v, from, tt.want, tt.fromClient)
			}
		})
	}
}
