package hub_test

import (
	"net/http"
	"net/url"
	"testing"
	"testing/fstest"

	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// TestDashboardFiles checks the hub serves Options.Dashboard with the
// token cookie, the build's hashed assets cached for good and the page
// itself revalidated, and without the token nothing at all.
func TestDashboardFiles(t *testing.T) {
	ctx := testCtx(t)
	opts := hub.NewOptions()
	opts.Dashboard = http.FS(fstest.MapFS{
		"index.html":           {Data: []byte(`<div id="root"></div><script src="./assets/index-abc.js"></script>`)},
		"assets/index-abc.js":  {Data: []byte("console.log(1)")},
		"assets/index-abc.css": {Data: []byte("body{}")},
	})
	h := hubtest.Start(t, opts)
	cookie := &http.Cookie{Name: wire.TokenCookie, Value: h.PKI.Token}
	for _, tc := range []struct {
		path   string
		cookie bool
		status int
		cache  string
	}{
		{"/", true, http.StatusOK, "no-cache"},
		{"/assets/index-abc.js", true, http.StatusOK, "public, max-age=31536000, immutable"},
		{"/assets/index-abc.css", true, http.StatusOK, "public, max-age=31536000, immutable"},
		{"/nope.js", true, http.StatusNotFound, ""}, // the file server drops caching from errors
		{"/", false, http.StatusUnauthorized, ""},
		{"/assets/index-abc.js", false, http.StatusUnauthorized, ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.URL(tc.path, url.Values{}), nil)
		if tc.cookie {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Cache-Control") != tc.cache {
			t.Errorf("GET %s (cookie %v): HTTP %d, Cache-Control %q; want %d, %q",
				tc.path, tc.cookie, resp.StatusCode, resp.Header.Get("Cache-Control"), tc.status, tc.cache)
		}
	}
}
