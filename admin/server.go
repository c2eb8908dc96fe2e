package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server serves the admin API of one replica.
type Server struct {
	cfg    Config
	log    *slog.Logger
	sec    *security
	id     string
	scheme string // of this and every peer's admin API
	peers  *http.Client
	// tcpHandler serves Config.Addr, socketHandler Config.Socket.
	tcpHandler, socketHandler http.Handler
}

// NewServer checks cfg (see Config.Validate) and prepares a Server; Serve
// starts it.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Node == nil || cfg.Views == nil {
		return nil, errors.New("admin: a Node and Views are required")
	}
	if cfg.PeerTimeout <= 0 {
		cfg.PeerTimeout = 2 * time.Second
	}
	if cfg.MaxSnapshotBytes <= 0 {
		cfg.MaxSnapshotBytes = 256 << 20
	}
	sec, err := cfg.security(cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sec: sec, id: cfg.Node.Status().ID, scheme: "http"}
	if sec.cert != nil {
		s.scheme = "https"
	}
	s.peers = &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.PeerTimeout}).DialContext,
		TLSClientConfig:     s.peerTLS(),
		TLSHandshakeTimeout: cfg.PeerTimeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}}
	s.tcpHandler, s.socketHandler = s.routes()
	return s, nil
}

// Serve listens on Config.Addr and Config.Socket and serves until ctx ends,
// then shuts down gracefully and removes the socket. It returns an error if
// it cannot listen or stops serving.
func (s *Server) Serve(ctx context.Context) error {
	type listener struct {
		net.Listener
		handler http.Handler
		tls     bool
	}
	var listeners []listener
	if s.cfg.Addr != "" {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("admin: listen on %s: %w", s.cfg.Addr, err)
		}
		listeners = append(listeners, listener{ln, s.tcpHandler, s.sec.cert != nil})
	}
	if s.cfg.Socket != "" {
		ln, err := listenSocket(s.cfg.Socket)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, listener{ln, s.socketHandler, false})
	}
	// Handlers act on the Raft node, which the caller shuts down once Serve
	// returns: Serve waits for every handler to finish.
	var inflight sync.WaitGroup
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	for i, l := range listeners {
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inflight.Add(1)
				defer inflight.Done()
				l.handler.ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			// HTTP/1.1 only: nothing here needs HTTP/2, and an idle HTTP/2
			// connection holds up a graceful shutdown for a second.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		}
		if l.tls {
			srv.TLSConfig = s.serverTLS()
		}
		servers[i] = srv
		addr := l.Addr().String()
		go func() {
			var err error
			if l.tls {
				err = srv.ServeTLS(l, "", "")
			} else {
				err = srv.Serve(l)
			}
			errc <- fmt.Errorf("admin: serve on %s: %w", addr, err)
		}()
		if _, unix := l.Listener.(*socketListener); unix {
			s.log.Info("serving the admin API", "socket", addr)
		} else {
			s.log.Info("serving the admin API", "addr", addr, "scheme", s.scheme,
				"token", s.sec.tokens != nil, "client_ca", s.sec.clientCA != nil)
		}
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv.Shutdown(shutdownCtx) != nil {
			srv.Close()
		}
	}
	inflight.Wait()
	return err
}

func (s *Server) serverTLS() *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.sec.cert.Get(), nil },
	}
	if s.sec.clientCA != nil {
		// Verified per request (authenticate), against the current CA,
		// so that a refusal is an HTTP answer rather than a TLS alert.
		c.ClientAuth = tls.RequestClientCert
	}
	return c
}

// peerTLS is the client side of calls to other replicas: it presents this
// replica's certificate and verifies theirs against the peer CA, without a
// host name since pods are reached at changing IPs.
func (s *Server) peerTLS() *tls.Config {
	if s.sec.cert == nil {
		return nil
	}
	c := &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.sec.cert.Get(), nil },
	}
	if s.sec.peerCA != nil {
		c.InsecureSkipVerify = true // replaced by VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer presented no certificate")
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         s.sec.peerCA.Get(),
				Intermediates: intermediates(cs.PeerCertificates),
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			return err
		}
	}
	return c
}

func intermediates(chain []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range chain[1:] {
		pool.AddCert(c)
	}
	return pool
}

// token is the one this replica sends to its peers; "" without a token file.
func (s *Server) token() string {
	if s.sec.tokens == nil {
		return ""
	}
	return s.sec.tokens.Get()[0]
}

// authenticate returns nil, or the status and message to refuse with.
func (s *Server) authenticate(r *http.Request) (int, string) {
	if s.sec.clientCA != nil {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return http.StatusUnauthorized, "client certificate required"
		}
		_, err := r.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots:         s.sec.clientCA.Get(),
			Intermediates: intermediates(r.TLS.PeerCertificates),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return http.StatusForbidden, "client certificate not accepted: " + err.Error()
		}
	}
	if s.sec.tokens != nil {
		scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		given = strings.TrimSpace(given)
		if !strings.EqualFold(scheme, "Bearer") || given == "" {
			return http.StatusUnauthorized, "missing bearer token"
		}
		if !tokenMatches(given, s.sec.tokens.Get()) {
			return http.StatusUnauthorized, "invalid token"
		}
	}
	return 0, ""
}

// tokenMatches compares digests, so the time taken says nothing of the
// tokens, not even their length.
func tokenMatches(given string, tokens []string) bool {
	g := sha256.Sum256([]byte(given))
	ok := 0
	for _, t := range tokens {
		h := sha256.Sum256([]byte(t))
		ok |= subtle.ConstantTimeCompare(g[:], h[:])
	}
	return ok == 1
}

// routes returns the handlers of the TCP listener and of the unix socket:
// the same API, refusing cross-site requests, behind authentication on TCP
// only (the socket's file permission is its authentication).
func (s *Server) routes() (tcp, socket http.Handler) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("GET /v1/config", s.handleDNSConfig)
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.HandleFunc("GET /v1/peers", s.handlePeers)
	mux.HandleFunc("POST /v1/peers", s.leaderOnly(s.handleAddPeer))
	mux.HandleFunc("DELETE /v1/peers/{id}", s.leaderOnly(s.handleRemovePeer))
	mux.HandleFunc("POST /v1/leader/transfer", s.leaderOnly(s.handleTransfer))
	mux.HandleFunc("GET /v1/snapshot", s.handleSnapshot)
	mux.HandleFunc("POST /v1/snapshot", s.leaderOnly(s.handleRestore))
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderPeer, s.id)
		mux.ServeHTTP(w, r)
	})
	authenticated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, msg := s.checkHost(r); code != 0 {
			s.refuse(w, r, code, msg)
			return
		}
		if code, msg := s.authenticate(r); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kdnsd-admin"`)
			}
			s.refuse(w, r, code, msg)
			return
		}
		api.ServeHTTP(w, r)
	})
	return s.refuseCrossSite(authenticated), s.refuseCrossSite(api)
}

// refuse logs a refused request and answers it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.log.Warn("admin: refused a request", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "status", code, "reason", msg)
	writeError(w, code, "%s", msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, ErrorResponse{Error: fmt.Sprintf(format, args...)})
}

// who describes the caller for the log.
func who(r *http.Request) []any {
	attrs := []any{"remote", r.RemoteAddr}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		attrs = append(attrs, "client_cert", r.TLS.PeerCertificates[0].Subject.String())
	}
	if by := r.Header.Get(HeaderForwardedBy); by != "" {
		attrs = append(attrs, "forwarded_by", by)
	}
	return attrs
}
