package admin_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/raftnode"

	"github.com/kdnsd/kdnsd/test/wait"
)

// serveSocket starts a Server for cfg and returns a client of its socket and
// a function that stops it and returns what Serve returned.
func serveSocket(t *testing.T, cfg admin.Config) (*admin.Client, func() error) {
	t.Helper()
	srv, err := admin.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var result error
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	cl, err := admin.NewClient(admin.ClientConfig{Socket: cfg.Socket})
	if err != nil {
		t.Fatal(err)
	}
	return cl, stop
}

func waitSocket(t *testing.T, cl *admin.Client) {
	t.Helper()
	wait.For(t, "the admin socket", 5*time.Second, func() bool {
		_, err := cl.Status(context.Background())
		return err == nil
	})
}

func TestSocketServesTheAPIToItsOwnerOnly(t *testing.T) {
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	path := filepath.Join(t.TempDir(), "admin.sock")
	cl, stop := serveSocket(t, admin.Config{Socket: path, Node: fc.Node("a"), Views: fc})
	waitSocket(t, cl)
	st, err := cl.Status(ctxT(t))
	if err != nil || st.ID != "a" {
		t.Fatalf("status over the socket: %+v, %v", st, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file mode %v, want a socket of mode 0600", fi.Mode())
	}
	if _, err := cl.Restore(ctxT(t), snapshotOf(t, 3)); err != nil {
		t.Fatalf("restore over the socket: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket file after shutdown: %v", err)
	}
}

func TestSocketLeftByAnEarlierRunIsReplaced(t *testing.T) {
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	path := filepath.Join(t.TempDir(), "admin.sock")
	// A process killed while serving leaves its socket file behind.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	cl, _ := serveSocket(t, admin.Config{Socket: path, Node: fc.Node("a"), Views: fc})
	waitSocket(t, cl)
}

func TestSocketPathTakenIsNotReplaced(t *testing.T) {
	fc := admintest.NewCluster(raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7000", Voter: true})
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	l, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for path, want := range map[string]string{
		file:              "exists and is not a socket",
		live:              "another process is serving on it",
		dir:               "exists and is not a socket",
		dir + "/no/such/": "bind",
	} {
		_, stop := serveSocket(t, admin.Config{Socket: path, Node: fc.Node("a"), Views: fc})
		if err := stop(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Serve on %s: %v, want an error containing %q", path, err, want)
		}
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != "keep" {
		t.Errorf("the file at the socket path: %q, %v", data, err)
	}
	// The live socket still answers its own process.
	conn, err := net.Dial("unix", live)
	if err != nil {
		t.Fatalf("the other process's socket: %v", err)
	}
	conn.Close()
}

// TestSocketOnlyCallsNoPeers: with no admin address, peers are listed from
// the Raft configuration and a leader-only request to a follower is not
// forwarded, with a reason.
func TestSocketOnlyCallsNoPeers(t *testing.T) {
	fc := admintest.NewCluster(
		raftnode.ServerInfo{ID: "a", Address: "127.0.0.1:7001", Voter: true},
		raftnode.ServerInfo{ID: "b", Address: "127.0.0.1:7002", Voter: true},
	)
	cl, _ := serveSocket(t, admin.Config{Socket: filepath.Join(t.TempDir(), "admin.sock"), Node: fc.Node("b"), Views: fc,
		PeerAdminAddr: func(string, string) string { return "127.0.0.1:1" }})
	waitSocket(t, cl)
	peers, err := cl.Peers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers.Peers {
		switch p.ID {
		case "a":
			if !p.Leader || p.Reachable || !strings.Contains(p.Problem, "unix socket only") {
				t.Errorf("%+v", p)
			}
		case "b":
			if !p.Healthy || p.State != "Follower" {
				t.Errorf("%+v", p)
			}
		}
	}
	_, err = cl.RemovePeer(ctxT(t), "a")
	wantAPIError(t, err, http.StatusServiceUnavailable, "cannot forward to the leader a")
}
