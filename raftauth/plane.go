package raftauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/kdnsd/kdnsd/internal/filewatch"
)

// Plane is one replica's side of the Raft plane's mutual TLS: the
// certificate it presents, the CAs it trusts, and the rule that ties a
// server ID to a certificate.
type Plane struct {
	id, domain string
	cert       func() *tls.Certificate
	roots      func() *x509.CertPool
	issuer     *issuer // nil when the certificate comes from files
}

// Files names the PEM files of a replica's Raft identity, as an operator or
// cert-manager provides them.
type Files struct {
	Cert, Key, CA string
}

// NewFromFiles uses a certificate and key from files, trusting the CAs of
// the CA file. All three are read again whenever one changes on disk; a
// rotation that leaves them unreadable keeps the last good set. The
// certificate must name server id under domain.
func NewFromFiles(f Files, id, domain string, log *slog.Logger) (*Plane, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("raft TLS from files needs a certificate, a key and a CA file")
	}
	cert, err := filewatch.New("raft TLS certificate", log, filewatch.KeyPair("raft TLS", f.Cert, f.Key), f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	ca, err := filewatch.New("raft TLS CA", log, filewatch.CAPool("raft TLS", f.CA), f.CA)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Get().Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Cert, err)
	}
	if err := checkClaim(leaf, domain, id, ""); err != nil {
		return nil, fmt.Errorf("%s does not name this replica: want a DNS name %s: %w", f.Cert, Name(id, domain), err)
	}
	return &Plane{id: id, domain: domain, cert: cert.Get, roots: ca.Get}, nil
}

// DefaultLeafLifetime is how long a leaf issued by NewIssuing is valid; a new
// one is issued after two thirds of that.
const DefaultLeafLifetime = 24 * time.Hour

// NewIssuing issues this replica's leaf from a CA whose certificate (a
// bundle during a rotation) and key are in files: the leaf names server id
// under domain and the given IPs, and lives for lifetime. A new leaf is
// issued after two thirds of its life, and at once when the CA files change.
func NewIssuing(caCert, caKey, id, domain string, ips []net.IP, lifetime time.Duration, log *slog.Logger) (*Plane, error) {
	if log == nil {
		log = slog.Default()
	}
	if lifetime <= 0 {
		lifetime = DefaultLeafLifetime
	}
	ca, err := filewatch.New("raft CA", log, func() (*signer, error) { return loadSigner(caCert, caKey) }, caCert, caKey)
	if err != nil {
		return nil, err
	}
	is := &issuer{ca: ca, id: id, domain: domain, ips: ips, lifetime: lifetime, log: log, now: time.Now}
	if _, err := is.issue(ca.Get()); err != nil {
		return nil, err
	}
	return &Plane{id: id, domain: domain, cert: is.current, roots: func() *x509.CertPool { return ca.Get().roots }, issuer: is}, nil
}

// issuer keeps a leaf issued from the current CA.
type issuer struct {
	ca       *filewatch.Value[*signer]
	id       string
	domain   string
	ips      []net.IP
	lifetime time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	by      *signer // the CA that issued leaf
	leaf    *tls.Certificate
	renewAt time.Time
}

func (is *issuer) current() *tls.Certificate {
	s := is.ca.Get()
	is.mu.Lock()
	leaf, fresh := is.leaf, is.by == s && is.now().Before(is.renewAt)
	is.mu.Unlock()
	if fresh {
		return leaf
	}
	next, err := is.issue(s)
	if err != nil {
		is.log.Error("cannot issue a new raft certificate; presenting the last one", "err", err)
		return leaf
	}
	return next
}

func (is *issuer) issue(s *signer) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := is.now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: is.id},
		DNSNames:     []string{Name(is.id, is.domain)},
		IPAddresses:  is.ips,
		// Clocks of pods on different nodes differ a little.
		NotBefore:   now.Add(-5 * time.Minute),
		NotAfter:    now.Add(is.lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if tmpl.NotAfter.After(s.cert.NotAfter) {
		tmpl.NotAfter = s.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, key.Public(), s.key)
	if err != nil {
		return nil, fmt.Errorf("issue raft certificate for %s: %w", is.id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	is.mu.Lock()
	is.by, is.leaf = s, cert
	is.renewAt = now.Add(tmpl.NotAfter.Sub(now) * 2 / 3)
	is.mu.Unlock()
	is.log.Info("issued raft certificate", "name", Name(is.id, is.domain), "ips", is.ips, "not_after", tmpl.NotAfter, "ca", s.cert.Subject.CommonName)
	return cert, nil
}

// Config is the tls.Config of both ends of a Raft connection: TLS 1.3, a
// certificate from the trusted CAs on both sides, naming a server under the
// domain. Which server may say what is checked per RPC (CheckClaim), since a
// connection is accepted before its first RPC names its sender.
func (p *Plane) Config() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.cert(), nil },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return p.cert(), nil },
		// Both ends verify the other in VerifyConnection against the CAs
		// as they are now, so that a rotated CA applies at once; peers are
		// dialled at pod IPs, so the host name is not what is checked.
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection:   p.verifyConnection,
	}
}

func (p *Plane) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("raft peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: p.roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return err
	}
	if len(ServerIDs(leaf, p.domain)) == 0 {
		return fmt.Errorf("raft peer certificate %q names no server under %q", leaf.Subject.CommonName, p.domain)
	}
	return nil
}

// CheckClaim reports whether the peer that presented cert may speak as
// server id from addr (host:port; "" skips the address check). It wraps
// ErrClaim when it may not.
func (p *Plane) CheckClaim(cert *x509.Certificate, id, addr string) error {
	return checkClaim(cert, p.domain, id, addr)
}

// Domain is the domain under which certificates name server IDs.
func (p *Plane) Domain() string { return p.domain }
