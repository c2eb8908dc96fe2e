package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	adminapi "github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/testenv"

	"github.com/kdnsd/kdnsd/test/wait"
)

// The command formats of the upgrade tests: the plain build's newest, and
// the one after it, which only a build with the kdnsd_formatnext tag knows.
const (
	releaseFormat = fsm.MaxCommandVersion
	nextFormat    = releaseFormat + 1
)

// formatNextBin builds, once, kdnsd with the kdnsd_formatnext build tag: a
// build that decodes and writes nextFormat, which the plain build does not
// know — a newer release, for upgrade tests.
var formatNextBin = sync.OnceValues(func() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(filepath.Dir(bin), "kdnsd-formatnext")
	build := exec.Command("go", "build", "-tags", "kdnsd_formatnext", "-o", out, "./cmd/kdnsd")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build kdnsd with kdnsd_formatnext: %w", err)
	}
	return out, nil
})

func buildFormatNext(t *testing.T) string {
	t.Helper()
	path, err := formatNextBin()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// forceFormatNext makes a kdnsd_formatnext build write nextFormat whenever
// it leads, whatever the cluster decodes: a buggy newer leader.
var forceFormatNext = fmt.Sprintf("KDNSD_TEST_FORCE_COMMAND_VERSION=%d", nextFormat)

// httpGet GETs path from r's HTTP listener.
func httpGet(r *Replica, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.HTTPAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metric returns the value of an unlabelled metric on r's /metrics.
func metric(t *testing.T, r *Replica, name string) string {
	t.Helper()
	_, body, err := httpGet(r, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no metric %s", r.ID, name)
	}
	return m[1]
}

// ready reports whether r's /readyz answers 200, and its body.
func ready(r *Replica) (bool, string) {
	code, body, err := httpGet(r, "/readyz")
	return err == nil && code == http.StatusOK, body
}

// digA asks r for name's A records with dig, a real client.
func digA(t *testing.T, r *Replica, name string) []string {
	t.Helper()
	host, port, _ := strings.Cut(r.DNSAddr, ":")
	out, err := exec.Command("dig", "@"+host, "-p", port, "+short", "+tries=1", "+time=2", name, "A").Output()
	if err != nil {
		t.Fatalf("dig @%s %s: %v", r.ID, name, err)
	}
	return strings.Fields(string(out))
}

// commandFormats returns the format byte of every command entry in the Raft
// log of the stopped replica r that upserts service ns/name.
func commandFormats(t *testing.T, r *Replica, ns, name string) []byte {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(r.DataDir, "raft", "raft.db"),
		BoltOptions: &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	first, err := store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	var formats []byte
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type == raft.LogCommand && len(l.Data) > 0 && bytes.Contains(l.Data, []byte(`"svc":{"ns":"`+ns+`","name":"`+name+`"`)) {
			formats = append(formats, l.Data[0])
		}
	}
	return formats
}

// onlyFormat checks that r's log holds upserts of service ns/name, all in
// format.
func onlyFormat(t *testing.T, r *Replica, ns, name string, format byte) {
	t.Helper()
	got := commandFormats(t, r, ns, name)
	if len(got) == 0 || bytes.Count(got, []byte{format}) != len(got) {
		t.Errorf("%s's log: upserts of %s/%s in formats %v, want only %d", r.ID, ns, name, got, format)
	}
}

func peerFormats(t *testing.T, flags []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range peersList(t, flags).Peers {
		out[p.ID] = p.MaxCommandVersion
	}
	return out
}

// TestMixedVersionClusterGatesCommandFormat: in a rolling upgrade under
// Kubernetes discovery, two voters run a build that knows the next command
// format and one the plain build. The leader writes the plain build's newest
// format while the plain voter is there, and every replica applies
// everything; once it too runs the new build, the leader writes the next
// format, and again every replica applies everything.
func TestMixedVersionClusterGatesCommandFormat(t *testing.T) {
	next := buildFormatNext(t)
	c, _ := newDiscoveredCluster(t, 3, func(c *Cluster) {
		c.AdminFlags = []string{} // loopback, open to this test
		c.Replicas[0].Bin, c.Replicas[1].Bin = next, next
	})
	old := c.Replicas[2]
	adminFlags := []string{"--server", "http://" + c.Replicas[0].AdminAddr}
	cs := admin(t)
	ns := namespace(t, cs)

	if got, want := peerFormats(t, adminFlags), map[string]int{"kdnsd-0": nextFormat, "kdnsd-1": nextFormat, "kdnsd-2": releaseFormat}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("peers list formats %v, want %v", got, want)
	}
	// The leader has worked out the format once every server answered its
	// probe (the pods are all up): the plain build's, for kdnsd-2.
	leader := waitLeader(t, c)
	wait.For(t, leader.ID+" to decide on a format", 30*time.Second, func() bool {
		log, _ := os.ReadFile(leader.LogPath)
		return bytes.Contains(log, []byte("command format for log entries this replica writes"))
	})
	if st := status(t, leader); st.CommandVersion != releaseFormat {
		t.Fatalf("leader %s writes format %d with an old voter", leader.ID, st.CommandVersion)
	}
	beforeIP := createService(t, cs, ns, "before-upgrade")
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer before-upgrade", 20*time.Second, func() bool {
			return answersA(r, fqdn("before-upgrade", ns), beforeIP.String())
		})
	}
	if st := status(t, old); st.ApplyBlocked != "" {
		t.Fatalf("the old replica stopped applying: %s", st.ApplyBlocked)
	}

	// The old replica is upgraded, in place, as a StatefulSet rolls.
	old.Stop()
	old.Bin = next
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the leader to write the next format", 40*time.Second, func() bool {
		l := c.Leader(context.Background())
		if l == nil {
			return false
		}
		st, err := l.Status(context.Background())
		return err == nil && st.CommandVersion == nextFormat
	})
	afterIP := createService(t, cs, ns, "after-upgrade")
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer after-upgrade", 20*time.Second, func() bool {
			return answersA(r, fqdn("after-upgrade", ns), afterIP.String()) && answersA(r, fqdn("before-upgrade", ns), beforeIP.String())
		})
		if st := status(t, r); st.ApplyBlocked != "" || st.MaxCommandVersion != nextFormat {
			t.Fatalf("%s: format %d, blocked %q", r.ID, st.MaxCommandVersion, st.ApplyBlocked)
		}
	}
	if got, want := peerFormats(t, adminFlags), map[string]int{"kdnsd-0": nextFormat, "kdnsd-1": nextFormat, "kdnsd-2": nextFormat}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("peers list formats %v, want %v", got, want)
	}

	// What the log really holds, read from a stopped follower's Raft store.
	var follower *Replica
	for _, r := range c.Replicas {
		if r != c.Leader(context.Background()) {
			follower = r
		}
	}
	follower.Stop()
	onlyFormat(t, follower, ns, "before-upgrade", byte(releaseFormat))
	onlyFormat(t, follower, ns, "after-upgrade", byte(nextFormat))
	if err := follower.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, follower.ID+" to answer again", 20*time.Second, func() bool {
		return answersA(follower, fqdn("after-upgrade", ns), afterIP.String())
	})
}

// TestNewerFormatStopsOldReplica: a leader that writes the next command
// format although a replica runs the plain build (forced, as a buggy newer
// leader would) stops that replica at the first entry in that format: it keeps answering
// from what it had applied, turns unready, says so in its metrics, status
// and in peers list, and applies nothing after it. The others go on. Run with
// a build that decodes that format, the replica applies the rest of the log.
func TestNewerFormatStopsOldReplica(t *testing.T) {
	next := buildFormatNext(t)
	// Static peers, probed as discovered ones are: a leader writes the
	// plain build's newest format, whatever it knows.
	c, err := NewOnHosts(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	c.AdminFlags = []string{}
	c.Replicas[0].Bin, c.Replicas[1].Bin = next, next
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	newer, other, old := c.Replicas[0], c.Replicas[1], c.Replicas[2]
	adminFlags := []string{"--server", "http://" + other.AdminAddr}
	cs := admin(t)
	ns := namespace(t, cs)
	beforeIP := createService(t, cs, ns, "before")
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer before", 20*time.Second, func() bool { return answersA(r, fqdn("before", ns), beforeIP.String()) })
	}
	if st := status(t, waitLeader(t, c)); st.CommandVersion != releaseFormat {
		t.Fatalf("with static peers, leader writes format %d", st.CommandVersion)
	}

	// kdnsd-0 comes back as a leader that writes the next format regardless.
	newer.Stop()
	newer.Env = []string{forceFormatNext}
	if err := newer.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, newer.ID+" to answer before", 20*time.Second, func() bool { return answersA(newer, fqdn("before", ns), beforeIP.String()) })
	if waitLeader(t, c) != newer {
		if _, err := kdnsdCLI(append([]string{"peers", "transfer-leader", newer.ID}, adminFlags...)...); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, newer.ID+" to lead", 20*time.Second, func() bool { return c.Leader(context.Background()) == newer })
	if st := status(t, newer); st.CommandVersion != nextFormat {
		t.Fatalf("forced leader writes format %d", st.CommandVersion)
	}

	afterIP := createService(t, cs, ns, "after")
	for _, r := range []*Replica{newer, other} {
		wait.For(t, r.ID+" to answer after", 20*time.Second, func() bool { return answersA(r, fqdn("after", ns), afterIP.String()) })
	}
	var blocked adminapi.Status
	wait.For(t, old.ID+" to stop applying", 20*time.Second, func() bool {
		blocked = status(t, old)
		return blocked.ApplyBlocked != ""
	})
	if blocked.AppliedIndex >= blocked.ApplyBlockedIndex || !strings.Contains(blocked.ApplyBlocked, fmt.Sprintf("version byte %d", nextFormat)) {
		t.Fatalf("%s: applied %d, blocked at %d: %s", old.ID, blocked.AppliedIndex, blocked.ApplyBlockedIndex, blocked.ApplyBlocked)
	}
	laterIP := createService(t, cs, ns, "later")
	for _, r := range []*Replica{newer, other} {
		wait.For(t, r.ID+" to answer later", 20*time.Second, func() bool { return answersA(r, fqdn("later", ns), laterIP.String()) })
	}
	wait.For(t, old.ID+" to have the later entries committed", 20*time.Second, func() bool {
		st := status(t, old)
		return st.CommitIndex > blocked.ApplyBlockedIndex
	})

	// The old replica answers its last state, and nothing after it.
	if got := digA(t, old, fqdn("before", ns)); len(got) != 1 || got[0] != beforeIP.String() {
		t.Errorf("dig @%s before: %q", old.ID, got)
	}
	for _, name := range []string{"after", "later"} {
		reply, err := old.Query(fqdn(name, ns), dns.TypeA, false)
		if err != nil || reply.Rcode != dns.RcodeNameError {
			t.Errorf("%s answered %s, written after the entry it stopped at: %v %v", old.ID, name, reply, err)
		}
	}
	if st := status(t, old); st.AppliedIndex != blocked.AppliedIndex || st.ServedIndex != blocked.AppliedIndex {
		t.Errorf("%s moved on: applied %d, served %d, was %d", old.ID, st.AppliedIndex, st.ServedIndex, blocked.AppliedIndex)
	}
	if ok, body := ready(old); ok || !strings.Contains(body, "cannot decode") {
		t.Errorf("%s /readyz: ready %v: %s", old.ID, ok, body)
	}
	if got := metric(t, old, "kdnsd_fsm_apply_blocked"); got != "1" {
		t.Errorf("%s kdnsd_fsm_apply_blocked %s", old.ID, got)
	}
	if got, want := metric(t, old, "kdnsd_fsm_apply_blocked_index"), fmt.Sprint(blocked.ApplyBlockedIndex); got != want {
		t.Errorf("%s kdnsd_fsm_apply_blocked_index %s, want %s", old.ID, got, want)
	}
	logged, _ := os.ReadFile(old.LogPath)
	if n := bytes.Count(logged, []byte("stopped applying the raft log:")); n != 1 {
		t.Errorf("%s logged the stop %d times, want once", old.ID, n)
	}
	for _, r := range []*Replica{newer, other} {
		if ok, body := ready(r); !ok {
			t.Errorf("%s not ready: %s", r.ID, body)
		}
		if got := metric(t, r, "kdnsd_fsm_apply_blocked"); got != "0" {
			t.Errorf("%s kdnsd_fsm_apply_blocked %s", r.ID, got)
		}
	}
	for _, p := range peersList(t, adminFlags).Peers {
		wantHealthy := p.ID != old.ID
		if p.Healthy != wantHealthy || (p.ID == old.ID && (!strings.Contains(p.Problem, "cannot decode") || p.MaxCommandVersion != releaseFormat)) {
			t.Errorf("peers list: %+v", p)
		}
	}

	// Made leader, the stopped replica hands leadership straight over: it
	// could not apply what it commits, and the others go on.
	if _, err := kdnsdCLI(append([]string{"peers", "transfer-leader", old.ID}, adminFlags...)...); err != nil {
		t.Fatal(err)
	}
	wait.For(t, old.ID+" to hand leadership over", 20*time.Second, func() bool {
		log, _ := os.ReadFile(old.LogPath)
		l := c.Leader(context.Background())
		return bytes.Contains(log, []byte("handed leadership over")) && l != nil && l != old
	})
	handedIP := createService(t, cs, ns, "handed-over")
	for _, r := range []*Replica{newer, other} {
		wait.For(t, r.ID+" to answer handed-over", 20*time.Second, func() bool { return answersA(r, fqdn("handed-over", ns), handedIP.String()) })
	}

	// The same replica, run with a build that decodes the next format,
	// applies the entry it stopped at and everything after it.
	old.Stop()
	old.Bin = next
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]string{"before": beforeIP.String(), "after": afterIP.String(), "later": laterIP.String(), "handed-over": handedIP.String()} {
		wait.For(t, old.ID+" upgraded to answer "+name, 20*time.Second, func() bool { return answersA(old, fqdn(name, ns), ip) })
	}
	wait.For(t, old.ID+" upgraded to be ready", 20*time.Second, func() bool { ok, _ := ready(old); return ok })
	if st := status(t, old); st.ApplyBlocked != "" {
		t.Errorf("%s upgraded still blocked: %s", old.ID, st.ApplyBlocked)
	}
}
