package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	adminapi "github.com/kdnsd/kdnsd/admin"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// execCLI runs the kdnsd CLI in r's "pod" as `kubectl exec kdnsd-0 -- kdnsd
// …` does with the shipped manifest: no flags but args, and of kdnsd's
// environment only KDNSD_DATA_DIR, which the manifest sets.
func execCLI(r *Replica, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"KDNSD_DATA_DIR=" + r.DataDir}
	return runCLI(cmd)
}

func socketPath(r *Replica) string { return filepath.Join(r.DataDir, "admin.sock") }

// socketHTTP is an HTTP client of r's admin socket, for requests the CLI
// would not send.
func socketHTTP(r *Replica) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socketPath(r))
		},
	}}
}

// forge sends a request as a web page in an operator's browser could, and
// returns the status code.
func forge(t *testing.T, client *http.Client, method, url string, body []byte, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// restores counts the snapshot restores r has logged.
func restores(r *Replica) int {
	data, _ := os.ReadFile(r.LogPath)
	return bytes.Count(data, []byte("restoring the whole cluster from a snapshot"))
}

// TestAdminSocketAsShipped: replicas started without an admin address, as
// the shipped manifest starts them, answer `kdnsd peers list` and `kdnsd
// status` run with only KDNSD_DATA_DIR set; the socket is the owner's only,
// refuses a cross-site restore, is removed on shutdown and replaced after a
// crash.
func TestAdminSocketAsShipped(t *testing.T) {
	c := newCluster(t, 3)
	leader := waitLeader(t, c)
	var follower *Replica
	for _, r := range c.Replicas {
		if r != leader {
			follower = r
		}
	}

	for _, r := range []*Replica{leader, follower} {
		var peers adminapi.PeersResponse
		wait.For(t, r.ID+" to list three peers with the leader over its socket", 20*time.Second, func() bool {
			out, err := execCLI(r, "peers", "list", "-o", "json")
			return err == nil && json.Unmarshal([]byte(out), &peers) == nil && len(peers.Peers) == 3 && peers.LeaderID == leader.ID
		})
		for _, p := range peers.Peers {
			if p.ID == r.ID && !p.Healthy {
				t.Errorf("%s lists itself unhealthy: %+v", r.ID, p)
			}
		}
		table, err := execCLI(r, "peers", "list")
		if err != nil || !strings.Contains(table, leader.ID) {
			t.Fatalf("peers list on %s: %v\n%s", r.ID, err, table)
		}
		out, err := execCLI(r, "status")
		if err != nil || !strings.Contains(out, r.ID) {
			t.Fatalf("status on %s: %v\n%s", r.ID, err, out)
		}
	}
	fi, err := os.Lstat(socketPath(leader))
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v, %v; want a socket of mode 0600", fi, err)
	}

	// The attack: a text/plain POST of a valid snapshot, as any web page can
	// send it. Refused, and nothing restored; the CLI's restore of the same
	// file goes through.
	file := filepath.Join(t.TempDir(), "backup.snap")
	if _, err := execCLI(leader, "snapshot", "save", file); err != nil {
		t.Fatal(err)
	}
	snapshot, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string]map[string]string{
		"text/plain":     {"Content-Type": "text/plain"},
		"cross-site":     {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
		"foreign Origin": {"Content-Type": "application/json", "Origin": "http://evil.example"},
	} {
		if code := forge(t, socketHTTP(leader), http.MethodPost, "http://localhost/v1/snapshot", snapshot, header); code != http.StatusForbidden {
			t.Errorf("%s restore over the socket: HTTP %d, want 403", name, code)
		}
	}
	if n := restores(leader); n != 0 {
		t.Fatalf("%d restores after refused requests", n)
	}
	if out, err := execCLI(leader, "snapshot", "restore", file); err != nil {
		t.Fatalf("snapshot restore over the socket: %v\n%s", err, out)
	}
	if n := restores(leader); n != 1 {
		t.Fatalf("%d restores logged after the CLI's, want 1", n)
	}

	// Only the user the replica runs as may use the socket: the data dir
	// open to others (as a volume with fsGroup is), the socket's own mode
	// is what refuses.
	t.Run("other user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to run the CLI as another user")
		}
		otherBin := filepath.Join(openDir(t), "kdnsd")
		copyFile(t, bin, otherBin, 0o755)
		for dir := follower.DataDir; dir != "/"; dir = filepath.Dir(dir) {
			openUp(t, dir)
		}
		cmd := exec.Command(otherBin, "peers", "list")
		cmd.Env = []string{"KDNSD_DATA_DIR=" + follower.DataDir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		_, err := runCLI(cmd)
		if err == nil || !strings.Contains(err.Error(), "permission denied on the admin socket "+socketPath(follower)) {
			t.Fatalf("peers list as another user: %v", err)
		}
	})

	// A graceful stop removes the socket; a crash leaves it, and the next
	// start replaces it.
	follower.Stop()
	if _, err := os.Lstat(socketPath(follower)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket after a graceful stop: %v", err)
	}
	if _, err := execCLI(follower, "status"); err == nil || !strings.Contains(err.Error(), "no admin socket at "+socketPath(follower)) {
		t.Fatalf("status with the replica stopped: %v", err)
	}
	if err := follower.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, follower.ID+" socket", 20*time.Second, func() bool { _, err := execCLI(follower, "status"); return err == nil })
	follower.Kill()
	if _, err := execCLI(follower, "status"); err == nil || !strings.Contains(err.Error(), "nothing answers on the admin socket") {
		t.Fatalf("status after a crash: %v", err)
	}
	if err := follower.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, follower.ID+" socket after a crash", 20*time.Second, func() bool { _, err := execCLI(follower, "status"); return err == nil })
}

// TestAdminLoopbackRefusesCrossSite: the loopback admin API without
// credentials refuses what a web page could send it through a browser (a
// text/plain restore, a cross-site JSON request, a rebound host name), and
// still takes the CLI's restore.
func TestAdminLoopbackRefusesCrossSite(t *testing.T) {
	c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddOnHost("127.0.0.51"); err != nil {
		t.Fatal(err)
	}
	c.AdminFlags = []string{} // loopback, plain HTTP, no credentials
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	r := waitLeader(t, c)
	server := "http://" + r.AdminAddr
	file := filepath.Join(t.TempDir(), "backup.snap")
	if _, err := kdnsdCLI("snapshot", "save", file, "--server", server); err != nil {
		t.Fatal(err)
	}
	snapshot, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(r.AdminAddr)
	for name, header := range map[string]map[string]string{
		"text/plain":                    {"Content-Type": "text/plain"},
		"form":                          {"Content-Type": "application/x-www-form-urlencoded"},
		"cross-site":                    {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
		"foreign Origin":                {"Content-Type": "application/json", "Origin": "http://evil.example"},
		"rebound name, same-origin":     {"Content-Type": "application/json", "Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin"},
		"client header, foreign Origin": {adminapi.HeaderClient: "x", "Origin": "http://evil.example"},
	} {
		if code := forge(t, http.DefaultClient, http.MethodPost, server+"/v1/snapshot", snapshot, header); code != http.StatusForbidden {
			t.Errorf("%s restore: HTTP %d, want 403", name, code)
		}
	}
	// A rebound name cannot read either.
	if code := forge(t, http.DefaultClient, http.MethodGet, server+"/v1/snapshot", nil, map[string]string{"Host": "evil.example:" + port}); code != http.StatusForbidden {
		t.Errorf("snapshot download for a rebound name: HTTP %d, want 403", code)
	}
	if n := restores(r); n != 0 {
		t.Fatalf("%d restores after refused requests", n)
	}
	if out, err := kdnsdCLI("snapshot", "restore", file, "--server", server); err != nil {
		t.Fatalf("the CLI's restore: %v\n%s", err, out)
	}
	if n := restores(r); n != 1 {
		t.Fatalf("%d restores logged after the CLI's, want 1", n)
	}
}

// openDir is a temporary directory every user may enter.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kdnsd-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	openUp(t, dir)
	return dir
}

// openUp lets every user enter dir, and restores its mode when the test ends.
func openUp(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o011 == 0o011 {
		return
	}
	if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, fi.Mode().Perm()) })
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}
