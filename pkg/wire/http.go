package wire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
)

// Endpoints of the hub. PathWorker is served on the worker (TLS) port;
// the others on the API port.
const (
	PathWorker    = "/v1/worker"
	PathSubscribe = "/v1/subscribe"
	PathTargets   = "/v1/targets"
	PathHeartbeat = "/v1/heartbeat"
	PathPcap      = "/v1/pcap"
	PathMetrics   = "/metrics"
	PathHealthz   = "/healthz"
)

// How a client presents the session token: an Authorization: Bearer
// header, or (for a browser) the token query parameter or cookie.
const (
	TokenQuery  = "token"
	TokenCookie = "shark_token"
)

// Limits both sides keep to.
const (
	// MaxBatchBytes is the JSON size a worker keeps an entries batch
	// under; MaxWorkerMessage is what the hub accepts from a worker.
	MaxBatchBytes    = 1 << 20
	MaxWorkerMessage = 8 << 20
	// MaxClientMessage is what the hub accepts from a subscriber.
	MaxClientMessage = 64 << 10
	// MaxTargetsBody bounds a POST /v1/targets body.
	MaxTargetsBody = 16 << 20
	// MaxHubMessage is what a worker should accept from the hub: a targets
	// message carries the whole IPMap.
	MaxHubMessage = MaxTargetsBody + 1<<20
)

// HubServerName is the name in the hub's certificate that workers verify,
// whatever the hub pod's address.
const HubServerName = "shark-hub"

// SetToken sets the Authorization header of a request to the hub.
func SetToken(h http.Header, token string) { h.Set("Authorization", "Bearer "+token) }

// RequestToken returns the token a request presents: the Authorization
// bearer, else the token query parameter, else the cookie.
func RequestToken(r *http.Request) string {
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, tok, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if t := r.URL.Query().Get(TokenQuery); t != "" {
		return t
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value
	}
	return ""
}

// WorkerTLSConfig is the TLS configuration a worker dials the hub with:
// TLS 1.3, the session CA (PEM) as the only root, HubServerName verified.
func WorkerTLSConfig(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("wire: no certificate in the session CA file")
	}
	return &tls.Config{
		RootCAs:    pool,
		ServerName: HubServerName,
		MinVersion: tls.VersionTLS13,
	}, nil
}
