package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"net"
	"net/http"
	"sync/atomic"
)

// declineAboveCents makes big charges fail with 402, one more error kind that
// only TLS plaintext capture can see.
const declineAboveCents = 30_000

// charge is the payment request front sends, and its answer.
type charge struct {
	ID          string `json:"id,omitempty"`
	User        string `json:"user"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status,omitempty"`
}

type secureServer struct {
	pings atomic.Int64
}

func runSecure(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("secure", flag.ContinueOnError)
	addr := fs.String("addr", envOr("SECURE_ADDR", ":8443"), "HTTPS listen address")
	dir := fs.String("tls-dir", envOr("SECURE_TLS_DIR", "/etc/secure-tls"), "directory with tls.crt and tls.key; self-signed when absent")
	ns := fs.String("namespace", envOr("POD_NAMESPACE", "demo"), "namespace, for the self-signed certificate's names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cert, err := loadServerCert(*dir, secureHosts(*ns))
	if err != nil {
		return err
	}
	ss := &secureServer{}
	srv := &http.Server{
		Handler: ss.routes(),
		// HTTP/1.1 and h2 over Go's crypto/tls: the eBPF tracer hooks both.
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	return serve(ctx, srv, ln)
}

func (ss *secureServer) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /v1/ping", ss.ping)
	mux.HandleFunc("POST /v1/charges", ss.charge)
	return mux
}

func (ss *secureServer) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"pong": ss.pings.Add(1), "tls": tls.VersionName(r.TLS.Version)})
}

func (ss *secureServer) charge(w http.ResponseWriter, r *http.Request) {
	var c charge
	if err := readJSON(w, r, &c); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if c.User == "" || c.AmountCents <= 0 {
		writeError(w, http.StatusUnprocessableEntity, "want a user and a positive amount_cents")
		return
	}
	c.ID = "ch_" + randomHex(8)
	if c.AmountCents > declineAboveCents {
		c.Status = "declined"
		writeJSON(w, http.StatusPaymentRequired, c)
		return
	}
	c.Status = "approved"
	writeJSON(w, http.StatusCreated, c)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
