package admin_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/raftnode"

	"github.com/kdnsd/kdnsd/test/wait"
)

func TestNewServerRefusesUnsafeConfig(t *testing.T) {
	ca := admintest.NewCA(t, "ca")
	cert, key := ca.Issue(t, "server", "127.0.0.1")
	token := admintest.WriteToken(t, testToken)
	empty := admintest.WriteToken(t, "# only a comment")
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	base := admin.Config{Node: fc.Node("a"), Views: fc}
	with := func(f func(*admin.Config)) admin.Config { c := base; f(&c); return c }
	for _, tt := range []struct {
		name string
		cfg  admin.Config
		want string // "" = accepted
	}{
		{"all interfaces, no auth", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TLSKey = ":8443", cert, key }), "without authentication"},
		{"pod IP, no auth", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TLSKey = "10.1.2.3:8443", cert, key }), "without authentication"},
		{"pod IP, plain HTTP with token", with(func(c *admin.Config) { c.Addr, c.TokenFile = "10.1.2.3:8443", token }), "over plain HTTP"},
		{"host name, no auth", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TLSKey = "kdnsd-0.kdnsd:8443", cert, key }), "without authentication"},
		{"client CA without TLS", with(func(c *admin.Config) { c.Addr, c.ClientCA = "127.0.0.1:8443", ca.CertFile }), "needs HTTPS"},
		{"certificate without key", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TokenFile = "0.0.0.0:8443", cert, token }), "both a certificate and a key"},
		{"missing token file", with(func(c *admin.Config) { c.Addr, c.TokenFile = "127.0.0.1:8443", "/nonexistent/token" }), "no such file"},
		{"token file without token", with(func(c *admin.Config) { c.Addr, c.TokenFile = "127.0.0.1:8443", empty }), "holds no token"},
		{"CA file that is not PEM", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TLSKey, c.ClientCA = ":8443", cert, key, token }), "no PEM certificate"},
		{"no port", with(func(c *admin.Config) { c.Addr = "127.0.0.1" }), "missing port"},
		{"no node", admin.Config{Addr: "127.0.0.1:8443"}, "a Node and Views are required"},
		{"neither address nor socket", base, "needs an address, a unix socket or both"},
		{"socket with a token file", with(func(c *admin.Config) { c.Socket, c.TokenFile = "/run/kdnsd/admin.sock", token }), "authenticated by its file permission"},
		{"socket path too long", with(func(c *admin.Config) { c.Socket = "/" + strings.Repeat("x", 120) }), "at most 107 bytes"},
		{"socket only", with(func(c *admin.Config) { c.Socket = "/run/kdnsd/admin.sock" }), ""},
		{"socket and address", with(func(c *admin.Config) {
			c.Addr, c.Socket, c.TokenFile = "127.0.0.1:8443", "/run/kdnsd/admin.sock", token
		}), ""},
		{"loopback, plain HTTP, no auth", with(func(c *admin.Config) { c.Addr = "127.0.0.1:8443" }), ""},
		{"localhost, token", with(func(c *admin.Config) { c.Addr, c.TokenFile = "localhost:8443", token }), ""},
		{"all interfaces, TLS and token", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TLSKey, c.TokenFile = ":8443", cert, key, token }), ""},
		{"all interfaces, TLS and client CA", with(func(c *admin.Config) { c.Addr, c.TLSCert, c.TLSKey, c.ClientCA = "[::]:8443", cert, key, ca.CertFile }), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.NewServer(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// serve starts a Server for cfg on a free loopback port and returns its
// address once it answers.
func serve(t testing.TB, cfg admin.Config, clientCfg admin.ClientConfig) (addr string, cl *admin.Client) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = listenAddr(t, "127.0.0.1")
	}
	srv, err := admin.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	clientCfg.Server = scheme + cfg.Addr
	if cl, err = admin.NewClient(clientCfg); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "admin server", 5*time.Second, func() bool {
		_, err := cl.Status(context.Background())
		var unreachable *admin.UnreachableError
		return !errors.As(err, &unreachable)
	})
	return cfg.Addr, cl
}

func TestTokenFileIsReadAgainWhenItChanges(t *testing.T) {
	ca := admintest.NewCA(t, "ca")
	cert, key := ca.Issue(t, "server", "127.0.0.1")
	tokenFile := admintest.WriteToken(t, "first-token")
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	_, cl := serve(t, admin.Config{TLSCert: cert, TLSKey: key, TokenFile: tokenFile, Node: fc.Node("a"), Views: fc},
		admin.ClientConfig{TokenFile: tokenFile, CACert: ca.CertFile})
	if _, err := cl.Status(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Rotation: the new token first, the old one still accepted.
	rewrite(t, tokenFile, "second-token\nfirst-token\n", 1)
	if _, err := cl.Status(ctxT(t)); err != nil {
		t.Fatalf("old token during rotation: %v", err)
	}
	newClient, err := admin.NewClient(admin.ClientConfig{Server: cl.Server(), TokenFile: tokenFile, CACert: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient.Status(ctxT(t)); err != nil {
		t.Fatalf("new token: %v", err)
	}
	rewrite(t, tokenFile, "second-token\n", 2)
	_, err = cl.Status(ctxT(t))
	wantAPIError(t, err, http.StatusUnauthorized, "invalid token")
	// A file emptied by mistake keeps the last good token.
	rewrite(t, tokenFile, "", 3)
	if _, err := newClient.Status(ctxT(t)); err != nil {
		t.Fatalf("after the file was emptied: %v", err)
	}
}

// rewrite replaces the file's content and gives it a modification time of
// its own (a fixed one per n): the reload then sees a change however fast the
// rewrites follow each other, whatever the file system's time resolution.
func rewrite(t *testing.T, path, content string, n int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(86400+int64(n), 0)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestPlainHTTPOnLoopbackWithoutAuth(t *testing.T) {
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	_, cl := serve(t, admin.Config{Node: fc.Node("a"), Views: fc}, admin.ClientConfig{})
	st, err := cl.Status(ctxT(t))
	if err != nil || st.ID != "a" || st.State != "Leader" {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestClientRefusesPlainHTTPToAnotherHost(t *testing.T) {
	_, err := admin.NewClient(admin.ClientConfig{Server: "http://10.0.0.1:8443"})
	if err == nil || !strings.Contains(err.Error(), "plain HTTP is only for a loopback address") {
		t.Fatalf("error %v", err)
	}
}

// fakeGroup serves the admin API of three fake members on loopback ports,
// with a map for PeerAdminAddr.
func fakeGroup(t testing.TB) (*admintest.Cluster, map[string]*admin.Client, map[string]string) {
	t.Helper()
	fc := admintest.NewCluster(
		raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7001", Voter: true},
		raftnode.ServerInfo{ID: "b", Address: "127.0.0.1:7002", Voter: true},
		raftnode.ServerInfo{ID: "c", Address: "127.0.0.1:7003", Voter: true},
	)
	addrs := map[string]string{}
	for _, id := range []string{"a", "b", "c"} {
		addrs[id] = listenAddr(t, "127.0.0.1")
	}
	clients := map[string]*admin.Client{}
	for _, id := range []string{"a", "b", "c"} {
		_, clients[id] = serve(t, admin.Config{
			Addr: addrs[id], TokenFile: admintest.WriteToken(t, testToken), Node: fc.Node(id), Views: fc,
			PeerAdminAddr: func(id, _ string) string { return addrs[id] }, PeerTimeout: 500 * time.Millisecond,
		}, admin.ClientConfig{TokenFile: admintest.WriteToken(t, testToken)})
	}
	return fc, clients, addrs
}

func TestForwardingErrors(t *testing.T) {
	fc, clients, addrs := fakeGroup(t)

	fc.SetLeader("")
	_, err := clients["b"].RemovePeer(ctxT(t), "c")
	wantAPIError(t, err, http.StatusServiceUnavailable, "no leader")
	_, err = clients["b"].TransferLeader(ctxT(t), "")
	wantAPIError(t, err, http.StatusServiceUnavailable, "no leader")

	// A leader whose admin API is down: 502 naming it and its address.
	fc.SetLeader("a")
	addrs["a"] = listenAddr(t, "127.0.0.1") // nothing listens there
	_, err = clients["b"].RemovePeer(ctxT(t), "c")
	apiErr := wantAPIError(t, err, http.StatusBadGateway, `cannot reach the admin API of the leader a at `+addrs["a"])
	if apiErr.Peer != "b" {
		t.Errorf("502 answered by %q, want b", apiErr.Peer)
	}

	addrs["a"] = "" // unknown
	_, err = clients["b"].RemovePeer(ctxT(t), "c")
	wantAPIError(t, err, http.StatusServiceUnavailable, "cannot forward to the leader a (raft address 127.0.0.1:7001): admin address unknown")

	// Plain HTTP never leaves loopback.
	addrs["a"] = "10.0.0.1:8443"
	_, err = clients["b"].RemovePeer(ctxT(t), "c")
	wantAPIError(t, err, http.StatusServiceUnavailable, "serves plain HTTP on loopback and does not call 10.0.0.1:8443")

	// A request already forwarded is not forwarded again (no loops while
	// replicas disagree on who leads).
	addrs["a"] = addrs["c"]
	req, _ := http.NewRequest(http.MethodDelete, clients["b"].Server()+"/v1/peers/c", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set(admin.HeaderForwardedBy, "c")
	req.Header.Set(admin.HeaderClient, "test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "does not forward a request forwarded by c") {
		t.Fatalf("forwarded request to a follower: %d %s", resp.StatusCode, body)
	}

	// The healthy path: a follower forwards to the leader, which applies
	// and answers.
	fc.SetLeader("c")
	_, err = clients["b"].RemovePeer(ctxT(t), "nobody")
	if apiErr := wantAPIError(t, err, http.StatusNotFound, `no peer "nobody"`); apiErr.Peer != "c" {
		t.Errorf("404 answered by %q, want the leader c", apiErr.Peer)
	}
	conf, err := clients["b"].RemovePeer(ctxT(t), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(conf.Servers) != 2 {
		t.Fatalf("configuration %+v", conf.Servers)
	}
}

func TestPeersListMarksUnreachablePeers(t *testing.T) {
	_, clients, addrs := fakeGroup(t)
	addrs["c"] = listenAddr(t, "127.0.0.1") // nothing listens there
	resp, err := clients["a"].Peers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Peers {
		switch p.ID {
		case "a":
			if !p.Healthy || !p.Leader || p.State != "Leader" {
				t.Errorf("%+v", p)
			}
		case "b":
			if !p.Healthy || p.Leader || p.State != "Follower" || p.LastContactMS == nil {
				t.Errorf("%+v", p)
			}
		case "c":
			if p.Healthy || p.Reachable || !strings.Contains(p.Problem, "unreachable") || !strings.Contains(p.Problem, addrs["c"]) {
				t.Errorf("%+v", p)
			}
		}
	}
}

func TestSamePort(t *testing.T) {
	f, err := admin.SamePort(":8443")
	if err != nil {
		t.Fatal(err)
	}
	for raftAddr, want := range map[string]string{
		"10.0.0.5:7000":      "10.0.0.5:8443",
		"[fd00::5]:7000":     "[fd00::5]:8443",
		"kdnsd-1.kdnsd:7000": "kdnsd-1.kdnsd:8443",
		"no-port":            "",
	} {
		if got := f("id", raftAddr); got != want {
			t.Errorf("SamePort(:8443)(%q) = %q, want %q", raftAddr, got, want)
		}
	}
	if _, err := admin.SamePort("8443"); err == nil {
		t.Error("SamePort accepted an address without a port")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "[::1]": true, "localhost": true, "LOCALHOST": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "kdnsd-0": false, "::ffff:127.0.0.1": true,
	} {
		if got := admin.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}
