// gotls is the Go end of the TLS tracer's tests: an HTTPS server (HTTP/1.1
// and HTTP/2), or a client that makes a few requests with one protocol.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	mode := flag.String("mode", "server", "server or client")
	addr := flag.String("addr", "127.0.0.1:9443", "server: listen address")
	cert := flag.String("cert", "", "server: certificate file")
	key := flag.String("key", "", "server: key file")
	base := flag.String("url", "https://127.0.0.1:9443", "client: base URL")
	paths := flag.String("paths", "/hello", "client: comma-separated paths to GET")
	h2 := flag.Bool("h2", false, "client: HTTP/2 instead of HTTP/1.1")
	wait := flag.Bool("wait", false, "client: read a line from stdin before the first request")
	flag.Parse()
	if *mode == "server" {
		serve(*addr, *cert, *key)
		return
	}
	if *wait {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	if err := client(*base, strings.Split(*paths, ","), *h2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func serve(addr, cert, key string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s\n", r.Proto)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.Copy(w, r.Body)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServeTLS(cert, key); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func client(base string, paths []string, h2 bool) error {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	tr.Protocols = new(http.Protocols)
	if h2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, p := range paths {
		resp, err := c.Get(base + p)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Proto, resp.StatusCode, p)
	}
	tr.CloseIdleConnections()
	return nil
}
