package raftnode

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/kdnsd/kdnsd/internal/filewatch"
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
	cert, err := filewatch.New("raft TLS certificate", nil, filewatch.KeyPair("raft TLS", f.Cert, f.Key), f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	ca, err := filewatch.New("raft TLS CA", nil, filewatch.CAPool("raft TLS", f.CA), f.CA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Get(), nil },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.Get(), nil },
		// Both ends verify the other against the current CA in
		// VerifyConnection, so that a rotated CA applies at once; peers are
		// addressed by changing pod IPs, so no host name is checked.
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("raft peer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: ca.Get(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			return err
		},
	}, nil
}
