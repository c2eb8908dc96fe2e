package raftauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// DefaultDomain is the domain under which certificates name server IDs when
// none is configured: the shipped StatefulSet's governing Service.
const DefaultDomain = "kdnsd-peers.kube-system.svc"

// Name is the DNS name that identifies server id under domain.
func Name(id, domain string) string { return id + "." + domain }

// ServerIDs lists the server IDs cert names under domain.
func ServerIDs(cert *x509.Certificate, domain string) []string {
	var ids []string
	suffix := "." + domain
	for _, n := range cert.DNSNames {
		if id, ok := strings.CutSuffix(n, suffix); ok && id != "" && !strings.Contains(id, ".") {
			ids = append(ids, id)
		}
	}
	return ids
}

// ErrClaim is wrapped by every error CheckClaim returns.
var ErrClaim = errors.New("raft peer claim does not match its certificate")

// checkClaim reports whether cert may speak as server id from addr
// (host:port, or "" when there is no address to check).
func checkClaim(cert *x509.Certificate, domain, id, addr string) error {
	if id == "" {
		return fmt.Errorf("%w: no server ID claimed", ErrClaim)
	}
	named := false
	for _, got := range ServerIDs(cert, domain) {
		named = named || got == id
	}
	if !named {
		return fmt.Errorf("%w: claims server %q, certificate names %v under %q", ErrClaim, id, ServerIDs(cert, domain), domain)
	}
	if addr == "" || len(cert.IPAddresses) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrClaim, addr, err)
	}
	ip := net.ParseIP(host)
	for _, allowed := range cert.IPAddresses {
		if ip != nil && allowed.Equal(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: server %q claims address %s, certificate is for %v", ErrClaim, id, addr, cert.IPAddresses)
}
