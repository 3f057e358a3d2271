package http1

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// tapLog records the bytes of one server connection in the order they
// crossed it: what the server read came from the client, what it wrote
// goes to the client.
type tapLog struct {
	mu    sync.Mutex
	steps []step
}

func (l *tapLog) add(dir dissect.Dir, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, step{dir: dir, data: string(b), ms: len(l.steps)})
}

type tapConn struct {
	net.Conn
	log *tapLog
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.log.add(dissect.ClientToServer, b[:n])
	}
	return n, err
}

// Write logs first, so that a response is logged before the client can
// send the next request.
func (c *tapConn) Write(b []byte) (int, error) {
	c.log.add(dissect.ServerToClient, b)
	return c.Conn.Write(b)
}

type tapListener struct {
	net.Listener
	mu   sync.Mutex
	logs []*tapLog
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	log := &tapLog{}
	l.mu.Lock()
	l.logs = append(l.logs, log)
	l.mu.Unlock()
	return &tapConn{Conn: c, log: log}, nil
}

// exchangeSpec is one request of TestNetHTTP and what the server answers.
type exchangeSpec struct {
	method  string
	status  int
	reqBody string
	chunked bool // request body of unknown length: sent chunked
	expect  bool // Expect: 100-continue
	gzip    bool // gzip response
	large   bool // response large enough for net/http to chunk it
}

func specFor(i int) exchangeSpec {
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "GET"}
	statuses := []int{200, 201, 204, 304, 404, 500, 302, 200, 202}
	s := exchangeSpec{method: methods[i%len(methods)], status: statuses[i%len(statuses)]}
	switch s.method {
	case "POST", "PUT", "PATCH":
		s.reqBody = strings.Repeat("body-"+strconv.Itoa(i)+";", 1+i%40)
		s.chunked = i%3 == 0
		s.expect = i%5 == 0
	}
	s.gzip = i%7 == 3
	s.large = i%11 == 5
	return s
}

// respBody is what the server sends for request i, before content coding.
func respBody(i int, s exchangeSpec, got int) string {
	b := fmt.Sprintf("resp %d: %s with %d bytes\n", i, s.method, got)
	if s.large {
		b += strings.Repeat("x", 10000)
	}
	return b
}

func testHandler(w http.ResponseWriter, r *http.Request) {
	i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
	s := specFor(i)
	body, _ := io.ReadAll(r.Body)
	text := respBody(i, s, len(body))
	if s.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(text))
		zw.Close()
		text = b.String()
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(s.status)
	io.WriteString(w, text)
}

// TestNetHTTP runs a real net/http client and server over loopback, taps
// the server's connections and checks that the parser finds every exchange.
func TestNetHTTP(t *testing.T) {
	const n = 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &tapListener{Listener: ln}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(testHandler))
	srv.Listener = tap
	srv.Start()

	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 4, ExpectContinueTimeout: 5 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	var wg sync.WaitGroup
	jobs := make(chan int)
	errs := make(chan error, n)
	for range 4 {
		wg.Go(func() {
			for i := range jobs {
				errs <- do(client, srv.URL, i)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	client.CloseIdleConnections()
	srv.Close()

	seen := map[string]*entry.Entry{}
	total := 0
	for _, log := range tap.logs {
		got, stats := run(log.steps, dissect.DefaultOptions(), whole, nil)
		if stats.Dropped != 0 || stats.Resyncs != 0 || stats.Skipped != 0 {
			t.Errorf("connection stats %+v, want no drops", stats)
		}
		total += len(got)
		for _, e := range got {
			seen[e.Path] = e
		}
	}
	if total != n || len(seen) != n {
		t.Fatalf("got %d entries for %d paths over %d connections, want %d", total, len(seen), len(tap.logs), n)
	}
	for i := range n {
		checkNetHTTPEntry(t, i, seen["/r/"+strconv.Itoa(i)])
	}
}

func do(client *http.Client, base string, i int) error {
	s := specFor(i)
	var body io.Reader
	if s.reqBody != "" {
		body = strings.NewReader(s.reqBody)
		if s.chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequest(s.method, base+"/r/"+strconv.Itoa(i), body)
	if err != nil {
		return err
	}
	if s.expect {
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != s.status {
		return fmt.Errorf("request %d: status %d, want %d", i, resp.StatusCode, s.status)
	}
	return err
}

func checkNetHTTPEntry(t *testing.T, i int, e *entry.Entry) {
	t.Helper()
	s := specFor(i)
	if e == nil {
		t.Errorf("request %d: no entry", i)
		return
	}
	if e.Method != s.method || e.Status != strconv.Itoa(s.status) || e.Error != "" || e.HTTP.Version != "1.1" {
		t.Errorf("request %d: %s %s -> %q (error %q), want %s %d", i, e.Method, e.Path, e.Status, e.Error, s.method, s.status)
	}
	if got := e.HTTP.Request.Body.Data; got != s.reqBody {
		t.Errorf("request %d: request body %q, want %q", i, got, s.reqBody)
	}
	if s.expect && s.reqBody != "" && e.HTTP.Response.Informational != 1 {
		t.Errorf("request %d: %d informational responses, want 1", i, e.HTTP.Response.Informational)
	}
	want := respBody(i, s, len(s.reqBody))
	if s.method == "HEAD" || s.status == 204 || s.status == 304 {
		want = ""
	}
	b := e.HTTP.Response.Body
	if b.Data != want || b.Truncated || s.gzip && want != "" && b.Decoded != "gzip" {
		t.Errorf("request %d: response body %.40q (decoded %q, truncated %v), want %.40q", i, b.Data, b.Decoded, b.Truncated, want)
	}
	if e.Size.Request <= 0 || e.Size.Response <= 0 || e.ElapsedUS < 0 {
		t.Errorf("request %d: sizes %+v elapsed %d", i, e.Size, e.ElapsedUS)
	}
}
