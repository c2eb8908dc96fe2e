package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// leaderOnly runs h on the leader and forwards the request to the leader
// from any other replica.
func (s *Server) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Node.IsLeader() {
			h(w, r)
			return
		}
		leaderID, leaderRaft := s.cfg.Node.Leader()
		switch {
		case leaderID == "":
			writeError(w, http.StatusServiceUnavailable, "no leader: the Raft group has not elected one (is a majority of voters up?); retry later")
			return
		case leaderID == s.id:
			writeError(w, http.StatusServiceUnavailable, "leadership is changing; retry")
			return
		case r.Header.Get(HeaderForwardedBy) != "":
			writeError(w, http.StatusServiceUnavailable, "%s is not the leader (the leader is %s) and does not forward a request forwarded by %s; retry",
				s.id, leaderID, r.Header.Get(HeaderForwardedBy))
			return
		}
		addr, problem := s.peerAddr(leaderID, leaderRaft)
		if addr == "" {
			writeError(w, http.StatusServiceUnavailable, "%s is not the leader and cannot forward to the leader %s (raft address %s): %s; send the request to the leader",
				s.id, leaderID, leaderRaft, problem)
			return
		}
		s.forward(w, r, leaderID, addr)
	}
}

func (s *Server) forward(w http.ResponseWriter, r *http.Request, leaderID, addr string) {
	target := &url.URL{Scheme: s.scheme, Host: addr}
	s.log.Info("admin: forwarding to the leader", append([]any{"leader", leaderID, "addr", addr, "method", r.Method, "path", r.URL.Path}, who(r)...)...)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The caller's credentials were for this replica; this replica
			// speaks to the leader with its own.
			pr.Out.Header.Del("Authorization")
			if tok := s.token(); tok != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+tok)
			}
			pr.Out.Header.Set(HeaderForwardedBy, s.id)
		},
		Transport: s.peers.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set(HeaderPeer, s.id)
			writeError(w, http.StatusBadGateway, "%s is not the leader and cannot reach the admin API of the leader %s at %s: %v", s.id, leaderID, addr, err)
		},
	}
	// The answer is the leader's, and says so.
	w.Header().Del(HeaderPeer)
	proxy.ServeHTTP(w, r)
}

// peerAddr gives a peer's admin address, or "" and why there is none.
func (s *Server) peerAddr(id, raftAddr string) (addr, problem string) {
	if s.cfg.Addr == "" {
		// No admin address of its own: no port or credentials to call peers' with.
		return "", "the admin API here is on a unix socket only, so peers are not called"
	}
	if s.cfg.PeerAdminAddr == nil {
		return "", "admin addresses of peers unknown"
	}
	addr = s.cfg.PeerAdminAddr(id, raftAddr)
	if addr == "" {
		return "", "admin address unknown"
	}
	// Plain HTTP is for loopback only: credentials never cross the network
	// in clear, and a peer's admin API is then not on the network anyway.
	if host, _, err := net.SplitHostPort(addr); s.scheme == "http" && (err != nil || !IsLoopback(host)) {
		return "", "this replica serves plain HTTP on loopback and does not call " + addr
	}
	return addr, ""
}

// peerStatus asks a peer's GET /v1/status.
func (s *Server) peerStatus(ctx context.Context, addr string) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PeerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Scheme: s.scheme, Host: addr, Path: "/v1/status"}).String(), nil)
	if err != nil {
		return nil, err
	}
	if tok := s.token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, errorMessage(body))
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("bad status answer: %w", err)
	}
	return &st, nil
}
