package filter

import (
	"strings"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzCompile feeds arbitrary expressions (they come from users and from
// the dashboard) through Compile and Match: errors are fine, panics and
// multi-line errors are not.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`proto == "http" && int(status) >= 500`, `src.pod.startsWith("front")`,
		`has(http.response) && http.response.status == 404`, `dns.answers.exists(a, a.ttl > 1)`,
		`http.request.headers["x"]`, `size(http) > 0`, `proto ==`, "\x00", `[1,2][5] == 1`,
	} {
		f.Add(s)
	}
	entries := []*entry.Entry{httpEntry(), dnsEntry(), grpcEntry(), noResponseEntry(), {}}
	f.Fuzz(func(t *testing.T, expr string) {
		if len(expr) > 512 {
			return // deeply nested long inputs only test the parser's recursion limits
		}
		flt, err := Compile(expr)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		for _, e := range entries {
			flt.Match(e)
		}
	})
}
