package postgres

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
)

var ignoreSizes = cmpopts.IgnoreFields(row{}, "Req", "Resp", "ElapsedMS")

// conn is what every entry after the startup below carries.
func conn(r row) row {
	r.User, r.Database, r.Application = "app", "shop", "psql"
	return r
}

func startupSteps() []step {
	return []step{
		cs(0, startupMsg("user", "app", "database", "shop", "application_name", "psql")),
		sc(1, authOK(), msg('S', cstr("server_version"), cstr("15.8")), msg('K', i32(42), i32(7)), ready('I')),
	}
}

var startupRow = conn(row{Method: "Startup", Path: "shop", Status: "ready", Command: "trust"})

func TestParser(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []row
	}{{
		name: "simple queries",
		steps: append(startupSteps(),
			cs(2, query("SELECT n FROM t")),
			sc(3, rowDesc(), dataRow("1"), dataRow("2"), complete("SELECT 2"), ready('I')),
			cs(4, query("BEGIN; INSERT INTO t VALUES (';'); UPDATE t SET n = 1 -- ;\n; COMMIT")),
			sc(5, complete("BEGIN"), complete("INSERT 0 1"), complete("UPDATE 3"), complete("COMMIT"), ready('I')),
			cs(6, query("SELECT * FROM nope")),
			sc(7, errorResp("42P01", `relation "nope" does not exist`), ready('I')),
			cs(8, query(";")),
			sc(9, msg('I'), ready('I')),
		),
		want: []row{
			startupRow,
			conn(row{Method: "Query", Path: "SELECT n FROM t", Status: "SELECT 2", Query: "SELECT n FROM t", Command: "SELECT 2", Rows: 2, Protocol: "simple"}),
			conn(row{Method: "Query", Path: "BEGIN", Status: "BEGIN", Query: "BEGIN", Command: "BEGIN", Protocol: "simple"}),
			conn(row{Method: "Query", Path: "INSERT INTO t VALUES (';')", Status: "INSERT 0 1", Query: "INSERT INTO t VALUES (';')", Command: "INSERT 0 1", Rows: 1, Protocol: "simple"}),
			conn(row{Method: "Query", Path: "UPDATE t SET n = 1 -- ;", Status: "UPDATE 3", Query: "UPDATE t SET n = 1 -- ;", Command: "UPDATE 3", Rows: 3, Protocol: "simple"}),
			conn(row{Method: "Query", Path: "COMMIT", Status: "COMMIT", Query: "COMMIT", Command: "COMMIT", Protocol: "simple"}),
			conn(row{Method: "Query", Path: "SELECT * FROM nope", Status: "ERROR 42P01", Query: "SELECT * FROM nope", SQLState: "42P01", PGError: `relation "nope" does not exist`, Protocol: "simple"}),
			conn(row{Method: "Query", Path: ";", Status: "empty", Query: ";", Protocol: "simple"}),
		},
	}, {
		name: "ssl refused then scram",
		steps: []step{
			cs(0, sslRequest()),
			sc(1, []byte("N")),
			cs(2, startupMsg("user", "app", "database", "shop", "application_name", "psql")),
			sc(3, msg('R', i32(10), cstr("SCRAM-SHA-256"), []byte{0})),
			cs(4, msg('p', cstr("SCRAM-SHA-256"), i32(32), []byte("n,,n=,r=secretnonce-secretnonce!"))),
			sc(5, msg('R', i32(11), []byte("r=abc,s=salt,i=4096"))),
			cs(6, msg('p', []byte("c=biws,r=abc,p=proofproofproof"))),
			sc(7, msg('R', i32(12), []byte("v=sig")), authOK(), ready('I')),
		},
		want: []row{
			{Method: "SSLRequest", Status: "refused"},
			conn(row{Method: "Startup", Path: "shop", Status: "ready", Command: "sasl SCRAM-SHA-256"}),
		},
	}, {
		name: "ssl accepted",
		steps: []step{
			cs(0, sslRequest()),
			sc(1, []byte("S")),
			cs(2, []byte("\x16\x03\x01\x00\x05hello")),
			sc(3, []byte("\x16\x03\x03\x00\x02hi")),
		},
		want: []row{{Method: "SSLRequest", Status: "accepted"}},
	}, {
		name: "authentication failure",
		steps: []step{
			cs(0, startupMsg("user", "app", "database", "shop", "application_name", "psql")),
			sc(1, msg('R', i32(5), []byte("salt")), errorResp("28P01", `password authentication failed for user "app"`)),
		},
		want: []row{conn(row{Method: "Startup", Path: "shop", Status: "ERROR 28P01", Command: "md5", SQLState: "28P01", PGError: `password authentication failed for user "app"`})},
	}, {
		name: "extended unnamed",
		steps: append(startupSteps(),
			cs(2, parseMsg("", "SELECT abalance FROM accounts WHERE aid = $1", 1), bindMsg("", "", "42"), describePortal(""), executeMsg(""), syncMsg()),
			sc(3, msg('1'), msg('2'), rowDesc(), dataRow("7"), complete("SELECT 1"), ready('I')),
			cs(4, parseMsg("", "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", 2), bindMsg("", "", "5", "42"), executeMsg(""), syncMsg()),
			sc(5, msg('1'), msg('2'), complete("UPDATE 1"), ready('I')),
		),
		want: []row{
			startupRow,
			conn(row{Method: "Execute", Path: "SELECT abalance FROM accounts WHERE aid = $1", Status: "SELECT 1", Query: "SELECT abalance FROM accounts WHERE aid = $1", Command: "SELECT 1", Rows: 1, Protocol: "extended", Params: 1}),
			conn(row{Method: "Execute", Path: "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", Status: "UPDATE 1", Query: "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", Command: "UPDATE 1", Rows: 1, Protocol: "extended", Params: 2}),
		},
	}, {
		name: "extended named and pipelined",
		steps: append(startupSteps(),
			cs(2, parseMsg("s1", "SELECT $1::int", 1), syncMsg()),
			sc(3, msg('1'), ready('I')),
			cs(4, bindMsg("", "s1", "1"), executeMsg(""), bindMsg("p2", "s1", "2"), executeMsg("p2"), syncMsg()),
			sc(5, msg('2'), dataRow("1"), complete("SELECT 1"), msg('2'), dataRow("2"), complete("SELECT 1"), ready('I')),
			cs(6, msg('C', []byte{'S'}, cstr("s1")), bindMsg("", "s1", "3"), executeMsg(""), syncMsg()),
			sc(7, msg('3'), errorResp("26000", `prepared statement "s1" does not exist`), ready('I')),
		),
		want: []row{
			startupRow,
			conn(row{Method: "Execute", Path: "SELECT $1::int", Status: "SELECT 1", Query: "SELECT $1::int", Command: "SELECT 1", Rows: 1, Protocol: "extended", Statement: "s1", Params: 1}),
			conn(row{Method: "Execute", Path: "SELECT $1::int", Status: "SELECT 1", Query: "SELECT $1::int", Command: "SELECT 1", Rows: 1, Protocol: "extended", Statement: "s1", Params: 1}),
			conn(row{Method: "Bind", Status: "ERROR 26000", SQLState: "26000", PGError: `prepared statement "s1" does not exist`, Protocol: "extended"}),
		},
	}, {
		name: "parse error skips to sync",
		steps: append(startupSteps(),
			cs(2, parseMsg("", "SELEC 1", 0), bindMsg("", ""), executeMsg(""), syncMsg()),
			sc(3, errorResp("42601", `syntax error at or near "SELEC"`), ready('I')),
			cs(4, parseMsg("", "SELECT 1", 0), bindMsg("", ""), executeMsg(""), syncMsg()),
			sc(5, msg('1'), msg('2'), dataRow("1"), complete("SELECT 1"), ready('I')),
		),
		want: []row{
			startupRow,
			conn(row{Method: "Parse", Path: "SELEC 1", Status: "ERROR 42601", Query: "SELEC 1", SQLState: "42601", PGError: `syntax error at or near "SELEC"`, Protocol: "extended"}),
			conn(row{Method: "Execute", Path: "SELECT 1", Status: "SELECT 1", Query: "SELECT 1", Command: "SELECT 1", Rows: 1, Protocol: "extended"}),
		},
	}, {
		name: "notification and copy",
		steps: append(startupSteps(),
			cs(2, query("COPY t FROM STDIN")),
			sc(3, msg('G', []byte{0}, i16(1), i16(0))),
			cs(4, msg('d', []byte("1\n2\n")), msg('c')),
			sc(5, complete("COPY 2"), ready('I'), msg('A', i32(99), cstr("orders"), cstr("new:17"))),
		),
		want: []row{
			startupRow,
			conn(row{Method: "Query", Path: "COPY t FROM STDIN", Status: "COPY 2", Query: "COPY t FROM STDIN", Command: "COPY 2", Rows: 2, Protocol: "simple"}),
			conn(row{Method: "Notification", Path: "orders", Status: "push", Query: "new:17"}),
		},
	}, {
		name: "mid-connection",
		steps: []step{
			sc(0, complete("SELECT 1"), ready('I')), // answers a query before the capture
			cs(1, query("SELECT 2")),
			sc(2, dataRow("2"), complete("SELECT 1"), ready('I')),
			cs(3, query("SELECT pg_sleep(10)")),
		},
		want: []row{
			{Method: "Query", Path: "SELECT 2", Status: "SELECT 1", Query: "SELECT 2", Command: "SELECT 1", Rows: 1, Protocol: "simple"},
			{Method: "Query", Path: "SELECT pg_sleep(10)", Error: "no response", Query: "SELECT pg_sleep(10)", Protocol: "simple"},
		},
	}, {
		name:  "cancel request",
		steps: []step{cs(0, untyped(i32(codeCancel), i32(4242), i32(1)))},
		want:  []row{{Method: "CancelRequest", Path: "pid 4242"}},
	}}
	for _, tt := range tests {
		for cname, ch := range chunkings() {
			t.Run(tt.name+"/"+cname, func(t *testing.T) {
				es, _ := run(tt.steps, ch)
				var got []row
				for _, e := range es {
					got = append(got, rowOf(e))
				}
				if diff := cmp.Diff(tt.want, got, ignoreSizes); diff != "" {
					t.Errorf("entries (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestSizesAndTimes checks wire sizes and times of an extended batch and
// a large row set that is counted, not kept.
func TestSizesAndTimes(t *testing.T) {
	req := cat(parseMsg("", "SELECT v FROM big", 0), bindMsg("", ""), executeMsg(""), syncMsg())
	big := strings.Repeat("v", 100_000)
	var rows []byte
	for range 20 {
		rows = append(rows, dataRow(big)...)
	}
	resp := cat(msg('1'), msg('2'), rows, complete("SELECT 20"))
	for cname, ch := range chunkings() {
		t.Run(cname, func(t *testing.T) {
			es, st := run([]step{cs(10, req), sc(25, resp, ready('I'))}, ch)
			if len(es) != 1 {
				t.Fatalf("%d entries", len(es))
			}
			got := rowOf(es[0])
			want := row{Method: "Execute", Path: "SELECT v FROM big", Status: "SELECT 20", Query: "SELECT v FROM big", Command: "SELECT 20", Rows: 20,
				Protocol: "extended", Req: int64(len(req) - 5), Resp: int64(len(resp)), ElapsedMS: 15}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if st.Resyncs != 0 || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestGap(t *testing.T) {
	steps := append(startupSteps(),
		cs(2, query("SELECT 1")),
		dissecttest.GapStep(dissect.ServerToClient, 300),
		sc(3, []byte("tail of a row"), ready('I')),
		cs(4, query("SELECT 2")),
		sc(5, dataRow("2"), complete("SELECT 1"), ready('I')),
	)
	es, st := run(steps, chunkings()["whole"])
	var got []row
	for _, e := range es {
		got = append(got, rowOf(e))
	}
	want := []row{
		startupRow,
		conn(row{Method: "Query", Path: "SELECT 1", Error: "capture gap", Query: "SELECT 1", Protocol: "simple"}),
		conn(row{Method: "Query", Path: "SELECT 2", Status: "SELECT 1", Query: "SELECT 2", Command: "SELECT 1", Rows: 1, Protocol: "simple"}),
	}
	if diff := cmp.Diff(want, got, ignoreSizes); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st.Resyncs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSplitSQL(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1;", []string{"SELECT 1"}},
		{" ; ;", nil},
		{"BEGIN; SELECT ';'; COMMIT;", []string{"BEGIN", "SELECT ';'", "COMMIT"}},
		{`SELECT "a;b" FROM t; SELECT E'x\';y'`, []string{`SELECT "a;b" FROM t`, `SELECT E'x\';y'`}},
		{"SELECT 'it''s;'; SELECT 2", []string{"SELECT 'it''s;'", "SELECT 2"}},
		{"DO $$ BEGIN PERFORM 1; END $$; SELECT 2", []string{"DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"}},
		{"SELECT $tag$;$tag$, $1; SELECT 3", []string{"SELECT $tag$;$tag$, $1", "SELECT 3"}},
		{"/* a; /* nested; */ b; */ SELECT 1; -- c;\nSELECT 2", []string{"/* a; /* nested; */ b; */ SELECT 1", "-- c;\nSELECT 2"}},
		{"SELECT 1; -- only a comment", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, splitSQL(tt.sql, 64)); diff != "" {
			t.Errorf("splitSQL(%q) (-want +got):\n%s", tt.sql, diff)
		}
	}
	if got := splitSQL("a;b;c;d", 2); !cmp.Equal(got, []string{"a", "b;c;d"}) {
		t.Errorf("capped split = %q", got)
	}
}

func TestShortSQL(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := map[string]string{
		"SELECT 1":               "SELECT 1",
		"  SELECT\n\t a,\n  b  ": "SELECT a, b",
		long:                     strings.Repeat("é", 128) + "…",
		"SELECT\n" + long:        "SELECT " + strings.Repeat("é", 125) + "…",
	}
	for in, want := range tests {
		if got := shortSQL(in); got != want {
			t.Errorf("shortSQL(%.20q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		want       dissect.Verdict
		fromClient bool
	}{
		{"startup", startupMsg("user", "app", "database", "shop"), dissect.Yes, true},
		{"startup cut short", startupMsg("user", "app")[:12], dissect.Maybe, true},
		{"startup without user", startupMsg("database", "shop"), dissect.No, false},
		{"ssl request", sslRequest(), dissect.Yes, true},
		{"gssenc request", untyped(i32(codeGSSENC)), dissect.Yes, true},
		{"cancel", untyped(i32(codeCancel), i32(1), i32(2)), dissect.Yes, true},
		{"kafka metadata v12", cat(i32(30), i16(3), i16(12), i32(1), i16(4), []byte("kgo!"), []byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0}), dissect.No, false},
		{"query", query("SELECT 1"), dissect.Yes, true},
		{"extended batch", cat(parseMsg("", "SELECT 1", 0), bindMsg("", ""), executeMsg(""), syncMsg()), dissect.Yes, true},
		{"bind then parse", cat(bindMsg("", ""), executeMsg(""), syncMsg(), parseMsg("", "SELECT 1", 0)), dissect.Yes, true},
		{"server responses", cat(dataRow("1"), complete("SELECT 1"), ready('I')), dissect.Yes, false},
		{"auth request", authOK(), dissect.Yes, false},
		{"header only", []byte("Q\x00\x00"), dissect.Maybe, true},
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), dissect.No, false},
		{"redis", []byte("*1\r\n$4\r\nPING\r\n"), dissect.No, false},
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
