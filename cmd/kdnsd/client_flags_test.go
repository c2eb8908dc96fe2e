package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"

	"github.com/kdnsd/kdnsd/test/wait"
)

const cliTestToken = "cli-test-token-0123456789"

// adminTestGroup is a fake three-member Raft group whose members each serve the
// admin API over HTTPS with a token and client certificates, on loopback.
type adminTestGroup struct {
	fc    *admintest.Cluster
	ca    *admintest.CA
	addrs map[string]string // admin address by ID
	// flags are the client flags that reach member "a" with good credentials.
	flags                []string
	tokenFile, cert, key string
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newAdminTestGroup(t *testing.T) *adminTestGroup {
	t.Helper()
	g := &adminTestGroup{
		fc: admintest.NewCluster(
			raftnode.ServerInfo{ID: "a", Address: "10.0.0.1:7000", Voter: true},
			raftnode.ServerInfo{ID: "b", Address: "10.0.0.2:7000", Voter: true},
			raftnode.ServerInfo{ID: "c", Address: "10.0.0.3:7000", Voter: false},
		),
		ca:        admintest.NewCA(t, "cli"),
		addrs:     map[string]string{},
		tokenFile: admintest.WriteToken(t, cliTestToken),
	}
	g.cert, g.key = g.ca.Issue(t, "operator")
	for _, id := range []string{"a", "b", "c"} {
		g.addrs[id] = freeLoopbackAddr(t)
	}
	for _, id := range []string{"a", "b", "c"} {
		cert, key := g.ca.Issue(t, id, "127.0.0.1")
		srv, err := admin.NewServer(admin.Config{
			Addr: g.addrs[id], TLSCert: cert, TLSKey: key, ClientCA: g.ca.CertFile, TokenFile: g.tokenFile,
			Node: g.fc.Node(id), Views: g.fc, WatcherState: func() string { return "watching" },
			FlagDNSConfig: &fsm.DNSConfig{Source: "flags", TTL: 30, PodMode: "insecure", CacheSize: 10000},
			PeerAdminAddr: func(id, _ string) string { return g.addrs[id] },
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	g.flags = g.flagsFor("a")
	// Wait until every member answers.
	for id := range g.addrs {
		c, err := admin.NewClient(admin.ClientConfig{Server: "https://" + g.addrs[id], TokenFile: g.tokenFile, CACert: g.ca.CertFile, Cert: g.cert, Key: g.key})
		if err != nil {
			t.Fatal(err)
		}
		waitAnswers(t, c)
	}
	return g
}

// waitAnswers waits until c's server answers at all.
func waitAnswers(t *testing.T, c *admin.Client) {
	t.Helper()
	wait.For(t, "the admin API at "+c.Server(), 5*time.Second, func() bool {
		_, err := c.Status(context.Background())
		var unreachable *admin.UnreachableError
		return !errors.As(err, &unreachable)
	})
}

func (g *adminTestGroup) flagsFor(id string) []string {
	return []string{"--server", "https://" + g.addrs[id], "--token-file", g.tokenFile, "--cacert", g.ca.CertFile, "--cert", g.cert, "--key", g.key}
}

// runAdminCLI runs kdnsd with args and returns its stdout and stderr.
func runAdminCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "kdnsd", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newPeersCommand(), newStatusCommand(), newSnapshotCommand(), newConfigCommand())
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func wantCLIError(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q, want one containing %q", err, w)
		}
	}
}

func TestClientErrorsAreExplained(t *testing.T) {
	g := newAdminTestGroup(t)
	wrongToken := admintest.WriteToken(t, "wrong")
	other := admintest.NewCA(t, "other")
	otherCert, otherKey := other.Issue(t, "intruder")
	server := "https://" + g.addrs["a"]
	closed := freeLoopbackAddr(t)
	for _, tt := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"wrong token", []string{"status", "--server", server, "--token-file", wrongToken, "--cacert", g.ca.CertFile, "--cert", g.cert, "--key", g.key},
			[]string{"unauthorized: check --token-file", "invalid token"}},
		{"no token", []string{"status", "--server", server, "--cacert", g.ca.CertFile, "--cert", g.cert, "--key", g.key},
			[]string{"unauthorized: the server requires a token: pass --token-file"}},
		{"no client certificate", []string{"status", "--server", server, "--token-file", g.tokenFile, "--cacert", g.ca.CertFile},
			[]string{"requires a client certificate: check --cert and --key"}},
		{"client certificate of another CA", []string{"status", "--server", server, "--token-file", g.tokenFile, "--cacert", g.ca.CertFile, "--cert", otherCert, "--key", otherKey},
			[]string{"forbidden", "check --cert and --key"}},
		{"server certificate not trusted", []string{"status", "--server", server, "--token-file", g.tokenFile, "--cert", g.cert, "--key", g.key},
			[]string{"cannot verify the certificate of " + server, "check --cacert"}},
		{"unreachable server", append([]string{"status"}, append(g.flagsFor("a"), "--server", "https://"+closed)...),
			[]string{"cannot reach the kdnsd admin API at https://" + closed, "connection refused"}},
		{"unknown ID", append([]string{"peers", "remove", "zz"}, g.flags...),
			[]string{`no peer "zz"`, "HTTP 404"}},
		{"bad output", append([]string{"status", "-o", "yaml"}, g.flags...),
			[]string{"--output \"yaml\""}},
		{"missing argument", append([]string{"peers", "add", "d"}, g.flags...),
			[]string{"accepts 2 arg(s)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runAdminCLI(t, tt.args...)
			wantCLIError(t, err, tt.wants...)
		})
	}

	t.Run("no leader", func(t *testing.T) {
		g.fc.SetLeader("")
		defer g.fc.SetLeader("a")
		_, _, err := runAdminCLI(t, append([]string{"peers", "transfer-leader"}, g.flagsFor("b")...)...)
		wantCLIError(t, err, "no leader", "HTTP 503")
	})
}

func TestServerFromEnvironment(t *testing.T) {
	g := newAdminTestGroup(t)
	t.Setenv("KDNSD_SERVER", "https://"+g.addrs["b"])
	t.Setenv("KDNSD_TOKEN_FILE", g.tokenFile)
	t.Setenv("KDNSD_CACERT", g.ca.CertFile)
	t.Setenv("KDNSD_CERT", g.cert)
	t.Setenv("KDNSD_KEY", g.key)
	out, _, err := runAdminCLI(t, "status", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"id": "b"`) {
		t.Fatalf("status from $KDNSD_SERVER:\n%s", out)
	}
	// Only the client flags come from the environment, not --force.
	t.Setenv("KDNSD_FORCE", "true")
	existing := filepath.Join(t.TempDir(), "exists.snap")
	if err := os.WriteFile(existing, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runAdminCLI(t, "snapshot", "save", existing)
	wantCLIError(t, err, "exists; pass --force")
}
