package hub

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

//go:embed placeholder
var placeholderFiles embed.FS

// placeholder is served until the dashboard is built: a page that shows
// the live feed, enough to see that a session works.
var placeholder = func() http.FileSystem {
	sub, err := fs.Sub(placeholderFiles, "placeholder")
	if err != nil {
		panic(err)
	}
	return http.FS(sub)
}()

// dashboard serves the dashboard files. A browser opened on ?token=...
// gets the token as an HttpOnly cookie and is redirected to the same page
// without it, so the token leaves the address bar and the history, and
// the page's requests (its WebSocket included) carry the cookie.
func (h *server) dashboard() http.Handler {
	files := h.opts.Dashboard
	if files == nil {
		files = placeholder
	}
	fileServer := http.FileServer(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if tok := q.Get(wire.TokenQuery); tok != "" && r.Method == http.MethodGet {
			http.SetCookie(w, &http.Cookie{
				Name:     wire.TokenCookie,
				Value:    tok,
				Path:     "/",
				HttpOnly: true,
				SameSite: http.SameSiteStrictMode,
			})
			q.Del(wire.TokenQuery)
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		hdr := w.Header()
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		hdr.Set("Cache-Control", cacheControl(r.URL.Path))
		fileServer.ServeHTTP(w, r)
	})
}

// cacheControl keeps the dashboard's build files (named after their
// content hash by Vite) cached for good, and everything else, index.html
// first, checked on each load: a new hub version brings a new page.
func cacheControl(path string) string {
	if strings.HasPrefix(path, "/assets/") {
		return "public, max-age=31536000, immutable"
	}
	return "no-cache"
}
