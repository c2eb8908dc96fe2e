package main

import (
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/raftnode"
)

// serveAdminSocket serves the admin API of a fake leader "a" on the unix
// socket at path only, as a replica started without --admin-addr does.
func serveAdminSocket(t *testing.T, fc *admintest.Cluster, path string) {
	t.Helper()
	srv, err := admin.NewServer(admin.Config{Socket: path, Node: fc.Node("a"), Views: fc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	cl, err := admin.NewClient(admin.ClientConfig{Socket: path})
	if err != nil {
		t.Fatal(err)
	}
	waitAnswers(t, cl)
}

// TestClientUsesTheSocketServeUses: without --server, the CLI finds the
// admin socket from --data-dir and --admin-socket, or their environment
// variables, as serve does; restore's upload goes through too.
func TestClientUsesTheSocketServeUses(t *testing.T) {
	fc := admintest.NewCluster(
		raftnode.ServerInfo{ID: "a", Address: "10.0.0.1:7000", Voter: true},
		raftnode.ServerInfo{ID: "b", Address: "10.0.0.2:7000", Voter: true},
	)
	dataDir := t.TempDir()
	serveAdminSocket(t, fc, filepath.Join(dataDir, "admin.sock"))
	other := t.TempDir()
	serveAdminSocket(t, fc, filepath.Join(other, "ops.sock"))

	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"data dir from the environment, as kubectl exec has it", nil, map[string]string{"KDNSD_DATA_DIR": dataDir}},
		{"--data-dir", []string{"--data-dir", dataDir}, nil},
		{"--admin-socket relative to --data-dir", []string{"--data-dir", other, "--admin-socket", "ops.sock"}, nil},
		{"absolute socket from the environment", nil, map[string]string{"KDNSD_DATA_DIR": dataDir, "KDNSD_ADMIN_SOCKET": filepath.Join(other, "ops.sock")}},
		{"empty --server", []string{"--server", "", "--data-dir", dataDir}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			out, _, err := runAdminCLI(t, append([]string{"status"}, tt.args...)...)
			if err != nil || !strings.Contains(out, "Leader") {
				t.Fatalf("status: %v\n%s", err, out)
			}
		})
	}

	t.Setenv("KDNSD_DATA_DIR", dataDir)
	// Over the socket alone the other peers are not asked: their health
	// is unknown, not bad.
	out, stderr, err := runAdminCLI(t, "peers", "list")
	if err != nil || !regexp.MustCompile(`(?m)^a +10\.0\.0\.1:7000 +yes +Leader +\* .* yes$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^b +10\.0\.0\.2:7000 +yes +- .* \?$`).MatchString(out) || !strings.Contains(stderr, "b: the admin API here is on a unix socket only") {
		t.Fatalf("peers list over the socket: %v\n%s%s", err, out, stderr)
	}
	fc.SetView(snapshotTestView(3))
	file := filepath.Join(t.TempDir(), "backup.snap")
	if _, _, err := runAdminCLI(t, "snapshot", "save", file); err != nil {
		t.Fatal(err)
	}
	fc.SetView(snapshotTestView(1))
	out, _, err = runAdminCLI(t, "snapshot", "restore", file)
	if err != nil || !strings.Contains(out, "3 services") {
		t.Fatalf("restore over the socket: %v\n%s", err, out)
	}
	if services, _ := fc.View().Counts(); services != 3 {
		t.Fatalf("%d services after the restore, want 3", services)
	}
}

func TestSocketErrorsAreExplained(t *testing.T) {
	empty := t.TempDir()
	stale := t.TempDir()
	// A socket file that nothing listens on any more.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(stale, "admin.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	token := admintest.WriteToken(t, cliTestToken)
	for _, tt := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"no socket", []string{"--data-dir", empty},
			[]string{"no admin socket at " + filepath.Join(empty, "admin.sock"), "--data-dir or $KDNSD_DATA_DIR", "--server"}},
		{"socket left by a process that is gone", []string{"--data-dir", stale},
			[]string{"nothing answers on the admin socket " + filepath.Join(stale, "admin.sock"), "not running"}},
		{"socket off", []string{"--data-dir", empty, "--admin-socket", ""},
			[]string{"no --server given, and no admin socket"}},
		{"credentials for the socket", []string{"--data-dir", empty, "--token-file", token},
			[]string{"are for --server", "needs none"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runAdminCLI(t, append([]string{"peers", "list"}, tt.args...)...)
			wantCLIError(t, err, tt.wants...)
		})
	}
}
