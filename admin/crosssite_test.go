package admin_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/filewatch"
	"github.com/kdnsd/kdnsd/raftnode"
)

// snapshotOf is a valid snapshot of one service, to restore.
func snapshotOf(t *testing.T, index uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := fsm.WriteSnapshot(&buf, fsm.NewView(index, []*fsm.Service{
		{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unixHTTP is an HTTP client of the unix socket at path.
func unixHTTP(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// tlsHTTP is an HTTP client that trusts caFile and presents a client
// certificate, as a browser that holds one does.
func tlsHTTP(t *testing.T, caFile, certFile, keyFile string) *http.Client {
	t.Helper()
	pool, err := filewatch.CAPool("test", caFile)()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
}

// send makes a request as a browser or a program would and returns the
// status and body of the answer.
func send(t *testing.T, client *http.Client, method, url, host string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestCrossSiteRequestsAreRefused: on the loopback listener without
// credentials and on the socket, a snapshot restore sent the way a web page
// can send it to another site is refused and restores nothing; the same
// body sent as a program sends it is restored.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	socket := filepath.Join(t.TempDir(), "admin.sock")
	addr, _ := serve(t, admin.Config{Socket: socket, Node: fc.Node("a"), Views: fc}, admin.ClientConfig{})
	snapshot := snapshotOf(t, 5)
	listeners := []struct {
		name, base string
		client     *http.Client
	}{
		{"loopback", "http://" + addr, http.DefaultClient},
		{"socket", "http://localhost", unixHTTP(socket)},
	}
	for _, l := range listeners {
		for _, tt := range []struct {
			name   string
			header map[string]string
			want   int
		}{
			{"text/plain, as a form or fetch of any page sends it", map[string]string{"Content-Type": "text/plain"}, http.StatusForbidden},
			{"form-encoded", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusForbidden},
			{"multipart", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, http.StatusForbidden},
			{"no content type", nil, http.StatusForbidden},
			{"octet-stream without the client header", map[string]string{"Content-Type": "application/octet-stream"}, http.StatusForbidden},
			{"cross-site Origin", map[string]string{"Content-Type": "application/json", admin.HeaderClient: "x", "Origin": "http://evil.example"}, http.StatusForbidden},
			{"null Origin", map[string]string{"Content-Type": "application/json", "Origin": "null"}, http.StatusForbidden},
			{"Sec-Fetch-Site cross-site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			{"Sec-Fetch-Site same-site (another port)", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
			{"the CLI's request", map[string]string{"Content-Type": "application/octet-stream", admin.HeaderClient: "kdnsd"}, http.StatusOK},
			{"JSON", map[string]string{"Content-Type": "application/json; charset=utf-8"}, http.StatusOK},
			{"JSON from a same-origin page", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		} {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				before := fc.View().Index()
				code, body := send(t, l.client, http.MethodPost, l.base+"/v1/snapshot", "", snapshot, tt.header)
				if code != tt.want {
					t.Fatalf("POST /v1/snapshot: %d %s, want %d", code, body, tt.want)
				}
				restored := fc.View().Index() != before
				if restored != (code == http.StatusOK) {
					t.Fatalf("answered %d, and restored: %v", code, restored)
				}
				if code == http.StatusForbidden && !strings.Contains(body, "cross-site") && !strings.Contains(body, admin.HeaderClient) {
					t.Fatalf("refusal does not say why: %s", body)
				}
			})
		}
		t.Run(l.name+"/reads", func(t *testing.T) {
			// A page cannot read the answer of another site: reads are not refused.
			if code, body := send(t, l.client, http.MethodGet, l.base+"/v1/status", "", nil, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}); code != http.StatusOK {
				t.Fatalf("GET /v1/status: %d %s", code, body)
			}
			// Neither header is needed for a body-less change a program sends.
			if code, body := send(t, l.client, http.MethodDelete, l.base+"/v1/peers/nobody", "", nil, map[string]string{admin.HeaderClient: "x"}); code != http.StatusNotFound {
				t.Fatalf("DELETE with the client header: %d %s", code, body)
			}
			if code, body := send(t, l.client, http.MethodDelete, l.base+"/v1/peers/nobody", "", nil, nil); code != http.StatusForbidden {
				t.Fatalf("DELETE without the client header: %d %s", code, body)
			}
		})
	}
}

// TestRebindingIsRefused: a page that points a name of its own at the
// loopback address is same-origin for the browser, so only the Host header
// gives it away.
func TestRebindingIsRefused(t *testing.T) {
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	socket := filepath.Join(t.TempDir(), "admin.sock")
	addr, _ := serve(t, admin.Config{Socket: socket, Node: fc.Node("a"), Views: fc}, admin.ClientConfig{})
	_, port, _ := net.SplitHostPort(addr)
	for host, want := range map[string]int{
		"rebind.example:" + port: http.StatusForbidden,
		"rebind.example":         http.StatusForbidden,
		"10.0.0.1:" + port:       http.StatusForbidden,
		"localhost:" + port:      http.StatusOK,
		"127.0.0.1:" + port:      http.StatusOK,
		"[::1]:" + port:          http.StatusOK,
	} {
		if code, body := send(t, http.DefaultClient, http.MethodGet, "http://"+addr+"/v1/snapshot", host, nil, nil); code != want {
			t.Errorf("GET /v1/snapshot with Host %s: %d %s, want %d", host, code, body, want)
		}
	}
	// No browser reaches a unix socket: its Host is not looked at.
	if code, body := send(t, unixHTTP(socket), http.MethodGet, "http://rebind.example/v1/status", "", nil, nil); code != http.StatusOK {
		t.Fatalf("socket, GET /v1/status with Host rebind.example: %d %s", code, body)
	}
}

// TestCrossSiteRefusedWithClientCertificates: a browser sends a client
// certificate it holds on its own, so mutual TLS does not stop a cross-site
// request; the same rule does.
func TestCrossSiteRefusedWithClientCertificates(t *testing.T) {
	ca := admintest.NewCA(t, "ca")
	cert, key := ca.Issue(t, "server", "127.0.0.1")
	clientCert, clientKey := ca.Issue(t, "operator")
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	addr, cl := serve(t, admin.Config{TLSCert: cert, TLSKey: key, ClientCA: ca.CertFile, Node: fc.Node("a"), Views: fc},
		admin.ClientConfig{CACert: ca.CertFile, Cert: clientCert, Key: clientKey})
	browser := tlsHTTP(t, ca.CertFile, clientCert, clientKey)
	before := fc.View().Index()
	code, body := send(t, browser, http.MethodPost, "https://"+addr+"/v1/snapshot", "", snapshotOf(t, 9), map[string]string{"Content-Type": "text/plain"})
	if code != http.StatusForbidden || fc.View().Index() != before {
		t.Fatalf("text/plain restore with a client certificate: %d %s, index %d → %d", code, body, before, fc.View().Index())
	}
	if _, err := cl.Restore(ctxT(t), snapshotOf(t, 9)); err != nil {
		t.Fatalf("the client's restore: %v", err)
	}
}
