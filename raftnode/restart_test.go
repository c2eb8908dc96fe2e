package raftnode

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/boltguard"
	"github.com/kdnsd/kdnsd/internal/boltguard/boltguardtest"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestRestartServesFromDiskWithoutQuorum: a replica restarted while the rest
// of the group is down serves what it had applied, at the same index.
func TestRestartServesFromDiskWithoutQuorum(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	for i, name := range []string{"a", "b", "c"} {
		commit(t, leader, fsm.UpsertService(service(name, "10.96.0."+string(rune('1'+i)))))
	}
	follower := followerOf(ms, leader)
	wait.For(t, "follower to apply", 5*time.Second, func() bool { return hasService(follower, "c") })
	applied := follower.store.View().Index()
	peers := peersOf(ms)
	for _, m := range ms {
		m.stop()
	}
	follower.start(t, peers)
	if got := follower.store.View().Index(); got < applied {
		t.Fatalf("restarted at index %d, had applied %d", got, applied)
	}
	for _, name := range []string{"a", "b", "c"} {
		if !hasService(follower, name) {
			t.Errorf("service %s missing after restart", name)
		}
	}
	if follower.node.IsLeader() {
		t.Error("a lone replica of three leads")
	}
}

// TestRestartedReplicaCatchesUp: a replica that was down while entries were
// committed receives them after it restarts.
func TestRestartedReplicaCatchesUp(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	follower := followerOf(ms, leader)
	peers := peersOf(ms)
	follower.stop()
	commit(t, leader, fsm.UpsertService(service("while-down", "10.96.0.20")))
	follower.start(t, peers)
	wait.For(t, "restarted follower to catch up", 10*time.Second, func() bool { return hasService(follower, "while-down") })
}

// TestRecordsWithoutRaftStateAreRefused: a data dir whose Raft state was
// lost but whose records were kept would skip the new log's first entries;
// the replica refuses to start and says what to do.
func TestRecordsWithoutRaftStateAreRefused(t *testing.T) {
	ms := newCluster(t, 1)
	m := ms[0]
	commit(t, leaderOf(t, ms), fsm.UpsertService(service("kept", "10.96.0.60")))
	m.stop()
	if err := os.RemoveAll(filepath.Join(m.dir, "raft")); err != nil {
		t.Fatal(err)
	}
	if err := startFails(t, m); !strings.Contains(err.Error(), "has no Raft state") {
		t.Fatalf("start: %v", err)
	}
}

// TestCorruptLogStoreFailsClearly: a Raft log store whose pages were damaged
// (bbolt panics on some of those) gives an error that names it, and is left
// as it is.
func TestCorruptLogStoreFailsClearly(t *testing.T) {
	ms := newCluster(t, 1)
	m := ms[0]
	for i := range 20 {
		commit(t, leaderOf(t, ms), fsm.UpsertService(service("s"+strconv.Itoa(i), "10.96.0.70")))
	}
	m.stop()
	path := filepath.Join(m.dir, "raft", "raft.db")
	data := boltguardtest.DamagePages(t, path)
	if err := startFails(t, m); !errors.Is(err, boltguard.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("start with a damaged log store: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("the damaged log store was modified")
	}
}

// startFails starts the stopped member m again from its data dir, which must
// fail, and returns the error.
func startFails(t *testing.T, m *member) error {
	t.Helper()
	store, err := fsm.Open(filepath.Join(m.dir, "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	node, err := Start(Config{ID: m.id, BindAddr: m.addr, DataDir: m.dir}, store)
	if err == nil {
		node.Shutdown()
		t.Fatalf("%s started", m.id)
	}
	return err
}
