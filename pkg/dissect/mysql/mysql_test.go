package mysql

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// pkt frames payload as one packet with sequence id seq.
func pkt(seq byte, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	n := len(p)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, p...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
func s(v string) []byte       { return []byte(v) }
func le(v int, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(v >> (8 * i))
	}
	return out
}

// Server packets.
func okPkt(affected, status int) []byte {
	return cat([]byte{0x00, byte(affected), 0x00}, le(status, 2), le(0, 2))
}
func eofPkt(status int) []byte { return cat([]byte{0xFE}, le(0, 2), le(status, 2)) }
func okEOF(status int) []byte  { return cat([]byte{0xFE, 0, 0}, le(status, 2), le(0, 2)) }
func errPkt(code int, state, msg string) []byte {
	return cat([]byte{0xFF}, le(code, 2), s("#"+state+msg))
}
func colDef(name string) []byte {
	lenstr := func(v string) []byte { return append([]byte{byte(len(v))}, v...) }
	return cat(lenstr("def"), lenstr("shop"), lenstr("t"), lenstr("t"), lenstr(name), lenstr(name),
		[]byte{0x0C}, le(33, 2), le(255, 4), []byte{0xFD}, le(0, 2), []byte{0}, le(0, 2))
}
func row(vals ...string) []byte {
	var out []byte
	for _, v := range vals {
		out = append(out, byte(len(v)))
		out = append(out, v...)
	}
	return out
}

func greeting(caps uint32) []byte {
	return cat([]byte{0x0A}, s("10.11.19-MariaDB\x00"), le(42, 4), s("abcdefgh"), []byte{0},
		le(int(caps&0xFFFF), 2), []byte{33}, le(2, 2), le(int(caps>>16), 2), []byte{21}, make([]byte, 10),
		s("ijklmnopqrst\x00mysql_native_password\x00"))
}

func login(caps uint32, user, db string) []byte {
	return cat(le(int(caps), 4), le(1<<24, 4), []byte{33}, make([]byte, 23), s(user+"\x00"),
		[]byte{20}, make([]byte, 20), s(db+"\x00"), s("mysql_native_password\x00"))
}

const baseCaps = capProtocol41 | capSecureConnection | capPluginAuth | capConnectWithDB

type recorder struct{ entries []*entry.Entry }

func (r *recorder) Emit(e *entry.Entry) { r.entries = append(r.entries, e) }

func testConn() *dissect.Conn {
	opts := dissect.DefaultOptions()
	return &dissect.Conn{Transport: "tcp", Client: netip.MustParseAddrPort("10.0.0.1:40000"),
		Server: netip.MustParseAddrPort("10.0.0.2:3306"), FlowID: "f1", Opts: &opts}
}

// step is bytes of one direction, or a gap (n > 0).
type step struct {
	dir  dissect.Dir
	data []byte
	gap  int
}

func c(data ...[]byte) step { return step{dir: dissect.ClientToServer, data: cat(data...)} }
func sv(data ...[]byte) step {
	return step{dir: dissect.ServerToClient, data: cat(data...)}
}

// run feeds steps to a new parser, each split into pieces of piece bytes
// (0: whole).
func run(steps []step, piece int) ([]*entry.Entry, dissect.ParserStats) {
	var r recorder
	p := Protocol().NewStream(testConn(), &r)
	ts := t0
	for _, st := range steps {
		if st.gap > 0 {
			p.Gap(st.dir, st.gap)
			continue
		}
		d := st.data
		for len(d) > 0 {
			n := len(d)
			if piece > 0 {
				n = min(n, piece)
			}
			p.Data(st.dir, d[:n], ts)
			d = d[n:]
		}
		ts = ts.Add(time.Millisecond)
	}
	p.End(ts)
	return r.entries, p.(dissect.StatsReporter).Stats()
}

// line is what a test compares of an entry.
func line(e *entry.Entry) string {
	m := e.MySQL
	parts := []string{e.Method, e.Path, e.Status, m.Command}
	add := func(name string, v int64) {
		if v != 0 {
			parts = append(parts, name+"="+itoa(v))
		}
	}
	add("rows", m.Rows)
	add("cols", int64(m.Columns))
	add("affected", m.Affected)
	add("results", int64(m.Results))
	add("stmt", int64(m.Statement))
	add("params", int64(m.Params))
	if m.Error != "" {
		parts = append(parts, "err="+m.SQLState+":"+m.Error)
	}
	if e.Error != "" {
		parts = append(parts, "error="+e.Error)
	}
	return strings.Join(parts, "|")
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	neg := v < 0
	if neg {
		v = -v
	}
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

func TestConversations(t *testing.T) {
	query := func(q string) []byte { return pkt(0, []byte{comQuery}, s(q)) }
	resultSet := func(eofs bool, rows ...[]byte) []byte {
		out := cat(pkt(1, []byte{2}), pkt(2, colDef("id")), pkt(3, colDef("name")))
		seq := byte(4)
		if eofs {
			out = append(out, pkt(seq, eofPkt(0x22))...)
			seq++
		}
		for _, r := range rows {
			out = append(out, pkt(seq, r)...)
			seq++
		}
		if eofs {
			return append(out, pkt(seq, eofPkt(0x22))...)
		}
		return append(out, pkt(seq, okEOF(0x22))...)
	}
	tests := []struct {
		name  string
		steps []step
		want  []string
		whole bool // a gap case: peers write packets whole, so do not split them
	}{{
		name: "login, query with EOFs, error, quit",
		steps: []step{
			sv(pkt(0, greeting(baseCaps))),
			c(pkt(1, login(baseCaps, "shark", "shop"))),
			sv(pkt(2, okPkt(0, 2))),
			c(query("SELECT id, name FROM t")), sv(resultSet(true, row("1", "a"), row("2", "b"))),
			c(query("select * from nope")), sv(pkt(1, errPkt(1146, "42S02", "Table 'shop.nope' doesn't exist"))),
			c(pkt(0, []byte{comQuit})),
		},
		want: []string{
			"HANDSHAKE|shark|OK|Handshake",
			"SELECT|SELECT id, name FROM t|OK|COM_QUERY|rows=2|cols=2",
			"SELECT|select * from nope|ERR 1146|COM_QUERY|err=42S02:Table 'shop.nope' doesn't exist",
			"QUIT|||COM_QUIT",
		},
	}, {
		name: "deprecated EOF negotiated",
		steps: []step{
			sv(pkt(0, greeting(baseCaps|capDeprecateEOF))),
			c(pkt(1, login(baseCaps|capDeprecateEOF, "u", "d"))),
			sv(pkt(2, okPkt(0, 2))),
			c(query("SELECT 1")), sv(resultSet(false, row("1", "a"))),
			c(query("SELECT 2")), sv(resultSet(false)),
		},
		want: []string{
			"HANDSHAKE|u|OK|Handshake",
			"SELECT|SELECT 1|OK|COM_QUERY|rows=1|cols=2",
			"SELECT|SELECT 2|OK|COM_QUERY|cols=2",
		},
	}, {
		name: "captured mid-connection: EOF style told by length",
		steps: []step{
			c(query("SELECT a")), sv(resultSet(true, row("x", "y"))),
			c(query("SELECT b")), sv(resultSet(false, row("x", "y"), row("z", "w"))),
			c(query("SELECT c")), sv(resultSet(false)),
		},
		want: []string{
			"SELECT|SELECT a|OK|COM_QUERY|rows=1|cols=2",
			"SELECT|SELECT b|OK|COM_QUERY|rows=2|cols=2",
			"SELECT|SELECT c|OK|COM_QUERY|cols=2",
		},
	}, {
		name: "multiple results, OK with affected rows, progress report",
		steps: []step{
			c(query("CALL p()")),
			sv(pkt(1, []byte{1}), pkt(2, colDef("a")), pkt(3, eofPkt(0x22)), pkt(4, row("1")),
				pkt(5, eofPkt(0x22|serverMoreResults)),
				pkt(6, errPkt(0xFFFF, "", "")), // progress
				pkt(7, okPkt(3, 0x02))),
		},
		want: []string{"CALL|CALL p()|OK|COM_QUERY|rows=1|cols=1|affected=3|results=2"},
	}, {
		name: "prepared statement: prepare, execute (binary rows), close",
		steps: []step{
			c(pkt(0, []byte{comStmtPrepare}, s("SELECT id, name FROM t WHERE id > ?"))),
			sv(pkt(1, []byte{0}, le(7, 4), le(2, 2), le(1, 2), []byte{0}, le(0, 2)),
				pkt(2, colDef("?")), pkt(3, eofPkt(2)), pkt(4, colDef("id")), pkt(5, colDef("name")), pkt(6, eofPkt(2))),
			c(pkt(0, []byte{comStmtExecute}, le(7, 4), []byte{0}, le(1, 4), []byte{0, 1, 3, 0}, le(5, 4))),
			sv(pkt(1, []byte{2}), pkt(2, colDef("id")), pkt(3, colDef("name")), pkt(4, eofPkt(2)),
				pkt(5, []byte{0, 0}, le(6, 4), row("x")), pkt(6, eofPkt(2))),
			c(pkt(0, []byte{comStmtClose}, le(7, 4))),
			c(pkt(0, []byte{comStmtExecute}, le(7, 4), []byte{0}, le(1, 4))),
			sv(pkt(1, errPkt(1243, "HY000", "Unknown prepared statement handler"))),
		},
		want: []string{
			"STMT_PREPARE|SELECT id, name FROM t WHERE id > ?|OK|COM_STMT_PREPARE|cols=2|stmt=7|params=1",
			"STMT_EXECUTE|SELECT id, name FROM t WHERE id > ?|OK|COM_STMT_EXECUTE|rows=1|cols=2|stmt=7",
			"STMT_CLOSE|SELECT id, name FROM t WHERE id > ?||COM_STMT_CLOSE|stmt=7",
			"STMT_EXECUTE||ERR 1243|COM_STMT_EXECUTE|stmt=7|err=HY000:Unknown prepared statement handler",
		},
	}, {
		name: "LOAD DATA LOCAL INFILE",
		steps: []step{
			c(query("LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t")),
			sv(pkt(1, []byte{0xFB}, s("x.csv"))),
			c(pkt(2, s("1,a\n2,b\n")), pkt(3)),
			sv(pkt(4, okPkt(2, 2))),
		},
		want: []string{"LOAD|LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t|OK|COM_QUERY|affected=2"},
	}, {
		name: "other commands",
		steps: []step{
			c(pkt(0, []byte{comInitDB}, s("shop"))), sv(pkt(1, okPkt(0, 2))),
			c(pkt(0, []byte{comPing})), sv(pkt(1, okPkt(0, 2))),
			c(pkt(0, []byte{comStatistics})), sv(pkt(1, s("Uptime: 10  Threads: 1"))),
			c(pkt(0, []byte{comFieldList}, s("t\x00"))), sv(pkt(1, colDef("a")), pkt(2, colDef("b")), pkt(3, eofPkt(2))),
			c(query("/* hint */ (SELECT 1)")), sv(pkt(1, []byte{1}), pkt(2, colDef("1")), pkt(3, eofPkt(2)), pkt(4, row("1")), pkt(5, eofPkt(2))),
			c(query("CREATE USER 'a' IDENTIFIED BY 'pw' PASSWORD EXPIRE")), sv(pkt(1, okPkt(0, 2))),
			c(query("xyzzy")), sv(pkt(1, errPkt(1064, "42000", "syntax"))),
		},
		want: []string{
			"INIT_DB|shop|OK|COM_INIT_DB",
			"PING||OK|COM_PING",
			"STATISTICS||OK|COM_STATISTICS",
			"FIELD_LIST|t|OK|COM_FIELD_LIST|cols=2",
			"SELECT|/* hint */ (SELECT 1)|OK|COM_QUERY|rows=1|cols=1",
			"CREATE|CREATE USER 'a' IDENTIFIED BY '[redacted]' PASSWORD EXPIRE|OK|COM_QUERY",
			"QUERY|xyzzy|ERR 1064|COM_QUERY|err=42000:syntax",
		},
	}, {
		name: "login refused",
		steps: []step{
			sv(pkt(0, greeting(baseCaps))),
			c(pkt(1, login(baseCaps, "root", ""))),
			sv(pkt(2, []byte{0xFE}, s("caching_sha2_password\x00"), make([]byte, 20))),
			c(pkt(3, make([]byte, 20))),
			sv(pkt(4, errPkt(1045, "28000", "Access denied for user 'root'"))),
		},
		want: []string{"HANDSHAKE|root|ERR 1045|Handshake|err=28000:Access denied for user 'root'"},
	}, {
		name: "gap during a result set, then the next command",
		steps: []step{
			c(query("SELECT a")), sv(pkt(1, []byte{1}), pkt(2, colDef("a"))),
			{dir: dissect.ServerToClient, gap: 300},
			sv(pkt(9, row("late"))), // the rest of the lost response: skipped
			c(query("SELECT b")), sv(pkt(1, []byte{1}), pkt(2, colDef("b")), pkt(3, eofPkt(2)), pkt(4, eofPkt(2))),
		},
		want: []string{
			"SELECT|SELECT a|OK|COM_QUERY|cols=1|error=capture gap",
			"SELECT|SELECT b|OK|COM_QUERY|cols=1",
		},
		whole: true,
	}, {
		name:  "no response before the end",
		steps: []step{c(query("SELECT SLEEP(100)"))},
		want:  []string{"SELECT|SELECT SLEEP(100)||COM_QUERY|error=no response"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, piece := range []int{0, 1, 5, 64} {
				if tc.whole && piece > 0 {
					continue
				}
				es, _ := run(tc.steps, piece)
				var got []string
				for _, e := range es {
					got = append(got, line(e))
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("piece %d: entries (-want +got):\n%s", piece, diff)
				}
			}
		})
	}
}

// TestLargePacket: a query of more than 16 MiB spans two packets; the SQL
// kept is bounded and marked truncated.
func TestLargePacket(t *testing.T) {
	q := "INSERT INTO blobs VALUES ('" + strings.Repeat("x", maxPacket) + "')"
	payload := append([]byte{comQuery}, q...)
	data := cat([]byte{0xFF, 0xFF, 0xFF, 0}, payload[:maxPacket], pkt(1, payload[maxPacket:]))
	es, _ := run([]step{c(data), sv(pkt(2, okPkt(1, 2)))}, 0)
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	m := es[0].MySQL
	if !m.Truncated || len(m.Query) != maxClientPayloadKept-1 || m.Affected != 1 || es[0].Method != "INSERT" {
		t.Errorf("entry %s truncated=%v query %d bytes", line(es[0]), m.Truncated, len(m.Query))
	}
	if es[0].Size.Request != int64(len(data)) {
		t.Errorf("request size %d, want %d", es[0].Size.Request, len(data))
	}
}

// TestSSLRequest: after an SSLRequest the connection is TLS, handed to the
// TLS hello dissector.
func TestSSLRequest(t *testing.T) {
	hello := []byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}
	es, _ := run([]step{
		sv(pkt(0, greeting(baseCaps|capSSL))),
		c(pkt(1, le(baseCaps|capSSL, 4), le(1<<24, 4), []byte{33}, make([]byte, 23)), hello),
	}, 3)
	var got []string
	for _, e := range es {
		got = append(got, e.Proto+" "+e.Status)
	}
	want := []string{"mysql TLS", "tls "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		v          dissect.Verdict
		fromClient bool
	}{
		{"greeting", pkt(0, greeting(baseCaps)), dissect.Yes, false},
		{"greeting start", pkt(0, greeting(baseCaps))[:12], dissect.Maybe, false},
		{"login", pkt(1, login(baseCaps, "u", "d")), dissect.Yes, true},
		{"query", pkt(0, []byte{comQuery}, s("select 1")), dissect.Yes, true},
		{"prepare", pkt(0, []byte{comStmtPrepare}, s("  UPDATE t SET a=?")), dissect.Yes, true},
		{"unknown verb", pkt(0, []byte{comQuery}, s("hello world")), dissect.No, false},
		{"short", []byte{5, 0}, dissect.Maybe, false},
		{"http", s("GET / HTTP/1.1\r\n"), dissect.No, false},
		{"tls", []byte{22, 3, 1, 0, 200, 1, 0, 0, 196}, dissect.No, false},
		{"greeting bad version text", pkt(0, []byte{0x0A}, s("ab\x01cdefghijklmnopqrstu\x00")), dissect.No, false},
		{"login without protocol 4.1", pkt(1, make([]byte, 40)), dissect.No, false},
	}
	for _, tc := range tests {
		v, fromClient := Detect(tc.data)
		if v != tc.v || fromClient != tc.fromClient {
			t.Errorf("%s: Detect = %v, %v; want %v, %v", tc.name, v, fromClient, tc.v, tc.fromClient)
		}
	}
}

func TestRedactSQL(t *testing.T) {
	tests := map[string]string{
		"SELECT 1":                               "SELECT 1",
		"CREATE USER 'a'@'%' IDENTIFIED BY 'pw'": "CREATE USER 'a'@'%' IDENTIFIED BY 'x'",
		`alter user b identified via ed25519 using PASSWORD("p w")`: `alter user b identified via ed25519 using PASSWORD("x")`,
		"SET PASSWORD = 'secret' ":                                  "SET PASSWORD = 'x' ",
		"GRANT ALL ON db.* TO u IDENTIFIED BY 'unterminated":        "GRANT ALL ON db.* TO u IDENTIFIED BY 'x",
		"SELECT password FROM users":                                "SELECT password FROM users",
	}
	for in, want := range tests {
		if got := redactSQL(in, "x"); got != want {
			t.Errorf("redactSQL(%q) = %q, want %q", in, got, want)
		}
	}
}
