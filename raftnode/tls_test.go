package raftnode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"

	"github.com/kdnsd/kdnsd/test/wait"
)

// testCA issues peer certificates into files.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

func (ca *testCA) issue(t *testing.T, dir, name string) TLSFiles {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	f := TLSFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"), CA: ca.file}
	writePEM(t, f.Cert, "CERTIFICATE", der)
	writePEM(t, f.Key, "EC PRIVATE KEY", keyDER)
	return f
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tlsConfig(t *testing.T, f TLSFiles) *tls.Config {
	t.Helper()
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMutualTLS: peers with certificates of the cluster CA form a cluster; a
// peer with a certificate of another CA is never heard, and so cannot join.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	var peers []Peer
	var ms []*member
	for i := range 3 {
		m := &member{id: fmt.Sprintf("r%d", i), addr: freeAddr(t), dir: t.TempDir()}
		m.tls = tlsConfig(t, ca.issue(t, dir, m.id))
		peers = append(peers, Peer{ID: m.id, Addr: m.addr})
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.start(t, peers)
	}
	leader := leaderOf(t, ms)
	commit(t, leader, fsm.UpsertService(service("over-tls", "10.96.0.50")))
	for _, m := range ms {
		wait.For(t, m.id+" to apply over TLS", 10*time.Second, func() bool { return hasService(m, "over-tls") })
	}

	other := newTestCA(t, dir, "other")
	intruder := &member{id: "intruder", addr: freeAddr(t), dir: t.TempDir()}
	intruder.tls = tlsConfig(t, other.issue(t, dir, "intruder"))
	intruder.start(t, nil)
	// The leader accepts the configuration change, but cannot replicate to a
	// peer whose certificate it does not trust, nor can the peer reach it.
	ctx, cancel := contextWithTimeout(3 * time.Second)
	defer cancel()
	leader.node.AddServer(ctx, intruder.id, intruder.addr, false)
	commit(t, leader, fsm.UpsertService(service("secret", "10.96.0.51")))
	if wait.Poll(2*time.Second, func() bool { return hasService(intruder, "secret") }) {
		t.Fatal("a peer with a foreign certificate received the log")
	}
}
