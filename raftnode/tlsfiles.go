package raftnode

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// TLSFiles names the PEM files of a peer's mutual-TLS identity.
type TLSFiles struct {
	Cert, Key, CA string
}

// Config returns a tls.Config for both ends of a Raft connection. Every peer
// must present a certificate signed by the CA. The files are read again
// whenever one of them changes on disk (cert-manager rotates them in place);
// a rotation that leaves them unreadable keeps the last good set.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("raft TLS needs a certificate, a key and a CA file")
	}
	r := &tlsReloader{files: f}
	if _, _, err := r.current(); err != nil {
		return nil, err
	}
	getCert := func() (*tls.Certificate, error) {
		cert, _, err := r.current()
		return cert, err
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return getCert() },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return getCert() },
		// Both ends verify the other against the current CA in
		// VerifyConnection, so that a rotated CA applies at once; peers are
		// addressed by changing pod IPs, so no host name is checked.
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("raft peer presented no certificate")
			}
			_, pool, err := r.current()
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			return err
		},
	}, nil
}

type tlsReloader struct {
	files TLSFiles
	mu    sync.Mutex
	stamp string
	cert  *tls.Certificate
	pool  *x509.CertPool
}

func (r *tlsReloader) current() (*tls.Certificate, *x509.CertPool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.fileStamp()
	if err == nil && stamp == r.stamp {
		return r.cert, r.pool, nil
	}
	cert, pool, loadErr := r.load()
	if err == nil {
		err = loadErr
	}
	if err != nil {
		if r.cert != nil {
			return r.cert, r.pool, nil
		}
		return nil, nil, err
	}
	r.stamp, r.cert, r.pool = stamp, cert, pool
	return cert, pool, nil
}

func (r *tlsReloader) fileStamp() (string, error) {
	stamp := ""
	for _, p := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

func (r *tlsReloader) load() (*tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("raft TLS: %w", err)
	}
	caPEM, err := os.ReadFile(r.files.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("raft TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("raft TLS: no certificate in CA file %s", r.files.CA)
	}
	return &cert, pool, nil
}
