package raftauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const domain = "kdnsd-peers.test.svc"

func newCA(t *testing.T) (cert, key string) {
	t.Helper()
	cert, key, err := InitCA(filepath.Join(t.TempDir(), "ca"), false)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func leafOf(t *testing.T, p *Plane) *x509.Certificate {
	t.Helper()
	c := p.cert()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestCheckClaim(t *testing.T) {
	caCert, caKey := newCA(t)
	p, err := NewIssuing(caCert, caKey, "kdnsd-1", domain, []net.IP{net.ParseIP("10.0.0.2")}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, p)
	noIP, err := NewIssuing(caCert, caKey, "kdnsd-1", domain, nil, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cert     *x509.Certificate
		id, addr string
		ok       bool
	}{
		{"its own ID and IP", leaf, "kdnsd-1", "10.0.0.2:7000", true},
		{"no address to check", leaf, "kdnsd-1", "", true},
		{"another server's ID", leaf, "kdnsd-0", "10.0.0.2:7000", false},
		{"an ID that only starts the same", leaf, "kdnsd", "10.0.0.2:7000", false},
		{"no ID", leaf, "", "10.0.0.2:7000", false},
		{"another IP", leaf, "kdnsd-1", "10.0.0.3:7000", false},
		{"an address that is a name", leaf, "kdnsd-1", "kdnsd-1:7000", false},
		{"certificate without IPs: any address", leafOf(t, noIP), "kdnsd-1", "10.9.9.9:7000", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.CheckClaim(tc.cert, tc.id, tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckClaim(%q, %q) = %v, want ok=%v", tc.id, tc.addr, err, tc.ok)
			}
		})
	}
}

func TestServerIDs(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"kdnsd-0." + domain}, "kdnsd-0"},
		{[]string{"kdnsd-0." + domain, "kdnsd-0.kdnsd-peers.test.svc.cluster.local"}, "kdnsd-0"},
		{[]string{"a.b." + domain}, ""}, // one label only
		{[]string{domain}, ""},
		{[]string{"kdnsd-0.other.svc"}, ""},
	} {
		got := strings.Join(ServerIDs(&x509.Certificate{DNSNames: tc.names}, domain), ",")
		if got != tc.want {
			t.Errorf("ServerIDs(%v) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

func TestInitCARefusesToReplace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	cert, key, err := InitCA(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(key)
	if _, _, err := InitCA(dir, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second InitCA: %v", err)
	}
	if after, _ := os.ReadFile(key); string(after) != string(before) {
		t.Fatal("the key changed")
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
	if _, _, err := InitCA(dir, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if after, _ := os.ReadFile(key); string(after) == string(before) {
		t.Fatal("--force kept the old key")
	}
	if _, err := loadSigner(cert, key); err != nil {
		t.Fatal(err)
	}
}

// writeLeaf issues a leaf from the CA files into files, as cert-manager would.
func writeLeaf(t *testing.T, caCert, caKey string, names []string) Files {
	t.Helper()
	s, err := loadSigner(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "x"}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, s.cert, key.Public(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	f := Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: caCert}
	os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return f
}

func TestFromFilesMustNameThisReplica(t *testing.T) {
	caCert, caKey := newCA(t)
	if _, err := NewFromFiles(writeLeaf(t, caCert, caKey, []string{"kdnsd-0." + domain}), "kdnsd-0", domain, nil); err != nil {
		t.Fatalf("matching certificate: %v", err)
	}
	_, err := NewFromFiles(writeLeaf(t, caCert, caKey, []string{"kdnsd-1." + domain}), "kdnsd-0", domain, nil)
	if err == nil || !strings.Contains(err.Error(), "kdnsd-0."+domain) {
		t.Fatalf("certificate of another replica: %v", err)
	}
}

// TestHandshake: two planes of one CA complete a TLS 1.3 handshake both
// ways; a plane of another CA, or a certificate naming no server under the
// domain, does not.
func TestHandshake(t *testing.T) {
	caCert, caKey := newCA(t)
	otherCert, otherKey := newCA(t)
	issue := func(cert, key, id string) *Plane {
		p, err := NewIssuing(cert, key, id, domain, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	server := issue(caCert, caKey, "kdnsd-0")
	foreignDomain, err := NewIssuing(caCert, caKey, "kdnsd-1", "elsewhere.svc", nil, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		client *Plane
		ok     bool
	}{
		{"same CA", issue(caCert, caKey, "kdnsd-1"), true},
		{"another CA", issue(otherCert, otherKey, "kdnsd-1"), false},
		{"no server name under the domain", foreignDomain, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tls.Listen("tcp", "127.0.0.1:0", server.Config())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			srvErr := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					err = c.(*tls.Conn).Handshake()
					c.Close()
				}
				srvErr <- err
			}()
			c, err := tls.Dial("tcp", l.Addr().String(), tc.client.Config())
			if err == nil {
				if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
					t.Errorf("TLS version %x", v)
				}
				c.Close()
			}
			sErr := <-srvErr
			if ok := err == nil && sErr == nil; ok != tc.ok {
				t.Fatalf("client %v, server %v; want ok=%v", err, sErr, tc.ok)
			}
		})
	}
}

// TestLeafRenewal: a new leaf is issued when the CA files change (a
// rotation), and when two thirds of the lifetime have passed.
func TestLeafRenewal(t *testing.T) {
	caCert, caKey := newCA(t)
	p, err := NewIssuing(caCert, caKey, "kdnsd-0", domain, nil, 3*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := leafOf(t, p)
	if again := leafOf(t, p); again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("a fresh leaf was replaced")
	}
	// Rotate: a new CA in the same files (its mtime set later, so the
	// change is seen whatever the file system's timestamp resolution).
	newCert, newKey := newCA(t)
	for src, dst := range map[string]string{newCert: caCert, newKey: caKey} {
		data, _ := os.ReadFile(src)
		os.WriteFile(dst, data, 0o600)
		later := time.Now().Add(time.Minute)
		os.Chtimes(dst, later, later)
	}
	rotated := leafOf(t, p)
	if rotated.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the leaf was not reissued after the CA changed")
	}
	s, _ := loadSigner(newCert, newKey)
	if err := rotated.CheckSignatureFrom(s.cert); err != nil {
		t.Fatalf("the new leaf is not signed by the new CA: %v", err)
	}
	// Renewal by age: not before two thirds of the lifetime, then at once.
	start := time.Now()
	p.issuer.now = func() time.Time { return start.Add(110 * time.Minute) }
	if again := leafOf(t, p); again.SerialNumber.Cmp(rotated.SerialNumber) != 0 {
		t.Fatal("renewed before two thirds of the lifetime")
	}
	p.issuer.now = func() time.Time { return start.Add(121 * time.Minute) }
	if renewed := leafOf(t, p); renewed.SerialNumber.Cmp(rotated.SerialNumber) == 0 {
		t.Fatal("the leaf was not renewed after two thirds of its lifetime")
	}
}
