package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/ui/internal/srchash"
)

// TestDistFresh fails when the sources changed since dist/ was built: run
// `make ui` and commit dist/ with the sources.
func TestDistFresh(t *testing.T) {
	want, err := os.ReadFile(srchash.File)
	if err != nil {
		t.Fatalf("%v: dist/ was not built by make ui", err)
	}
	got, err := srchash.Sum(".")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != got {
		t.Fatalf("dist/ is stale: the sources hash to %s, dist/ was built from %s; run make ui", got, strings.TrimSpace(string(want)))
	}
}

// TestDistServes checks the embedded build is a page whose script and
// style are embedded too.
func TestDistServes(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(Files()))
	defer srv.Close()
	index := get(t, srv.URL+"/")
	if !strings.Contains(index, `<div id="root">`) {
		t.Fatalf("index.html has no root element:\n%s", index)
	}
	assets, err := fs.ReadDir(FS(), "assets")
	if err != nil {
		t.Fatal(err)
	}
	var js, css int
	for _, a := range assets {
		ref := "./assets/" + a.Name()
		switch {
		case strings.HasSuffix(a.Name(), ".js"):
			js++
		case strings.HasSuffix(a.Name(), ".css"):
			css++
		default:
			continue
		}
		if !strings.Contains(index, ref) {
			t.Errorf("index.html does not load %s", ref)
		}
		if body := get(t, srv.URL+"/assets/"+a.Name()); len(body) == 0 {
			t.Errorf("%s is empty", a.Name())
		}
	}
	if js != 1 || css != 1 {
		t.Errorf("assets: %d scripts and %d style sheets, want one of each", js, css)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
