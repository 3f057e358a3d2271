package mysql_test

import (
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
)

// TestFilters selects entries of testdata/mysql.pcap by the MySQL fields,
// as `tap --filter` does.
func TestFilters(t *testing.T) {
	es := dissectFile(t, "mysql.pcap")
	if len(es) == 0 {
		t.Skip("no capture")
	}
	tests := []struct {
		expr string
		want int
	}{
		{`mysql.error != ""`, 4},
		{`mysql.code == 1146 && mysql.sqlstate == "42S02"`, 2},
		{`mysql.command == "COM_STMT_EXECUTE" && mysql.rows > 0`, 2},
		{`mysql.command == "COM_STMT_EXECUTE" && mysql.query.startsWith("INSERT") && mysql.affected == 1`, 2},
		{`proto == "mysql" && method == "SELECT" && mysql.rows >= 100`, 2},
		{`mysql.results > 1`, 2},
		{`mysql.query.contains("[redacted]")`, 1},
		{`mysql.command == "Handshake" && mysql.user == "shark" && mysql.server_version.contains("MariaDB")`, 2},
		{`has(mysql.statement) && mysql.statement == 1`, 5},
	}
	for _, tc := range tests {
		f, err := filter.Compile(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		n := 0
		for _, e := range es {
			if f.Match(e) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%s: %d entries, want %d", tc.expr, n, tc.want)
		}
	}
}
