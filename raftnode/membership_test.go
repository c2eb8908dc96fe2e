package raftnode

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"

	"github.com/kdnsd/kdnsd/test/wait"
)

func TestAddRemoveAndTransfer(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	ctx := context.Background()

	// A read replica joins as non-voter with no bootstrap of its own.
	extra := &member{id: "reader", addr: freeAddr(t), dir: t.TempDir()}
	extra.start(t, nil)
	if err := leader.node.AddServer(ctx, extra.id, extra.addr, false); err != nil {
		t.Fatal(err)
	}
	commit(t, leader, fsm.UpsertService(service("seen-by-reader", "10.96.0.30")))
	wait.For(t, "non-voter to apply", 10*time.Second, func() bool { return hasService(extra, "seen-by-reader") })
	servers, _ := leader.node.Servers()
	if len(servers) != 4 {
		t.Fatalf("servers %+v", servers)
	}
	for _, s := range servers {
		if s.ID == extra.id && s.Voter {
			t.Fatal("reader added as voter")
		}
	}

	if err := leader.node.RemoveServer(ctx, "nobody"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("remove unknown: %v", err)
	}
	if err := leader.node.RemoveServer(ctx, extra.id); err != nil {
		t.Fatal(err)
	}
	if servers, _ := leader.node.Servers(); len(servers) != 3 {
		t.Fatalf("after remove: %+v", servers)
	}

	target := followerOf(ms, leader)
	if _, err := leader.node.TransferLeadership(ctx, target.id); err != nil {
		t.Fatal(err)
	}
	wait.For(t, target.id+" to lead", 10*time.Second, func() bool { return target.node.IsLeader() })
}

// TestRestoreClusterIntoNewCluster: a snapshot of one cluster restored into a
// fresh one replaces its state everywhere, and later entries still apply
// although the snapshot came from a longer log.
func TestRestoreClusterIntoNewCluster(t *testing.T) {
	src := newCluster(t, 3)
	srcLeader := leaderOf(t, src)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		commit(t, srcLeader, fsm.UpsertService(service(name, "10.96.0.40")))
	}
	var snap bytes.Buffer
	if err := fsm.WriteSnapshot(&snap, srcLeader.store.View()); err != nil {
		t.Fatal(err)
	}

	dst := newCluster(t, 3)
	dstLeader := leaderOf(t, dst)
	commit(t, dstLeader, fsm.UpsertService(service("replaced", "10.96.0.41")))
	if err := dstLeader.node.RestoreCluster(context.Background(), bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, m := range dst {
		wait.For(t, m.id+" to hold the restored state", 10*time.Second, func() bool {
			return hasService(m, "e") && !hasService(m, "replaced")
		})
	}
	commit(t, dstLeader, fsm.UpsertService(service("after-restore", "10.96.0.42")))
	for _, m := range dst {
		wait.For(t, m.id+" to apply after restore", 10*time.Second, func() bool { return hasService(m, "after-restore") })
	}
	// And the restored state survives a restart.
	m := dst[0]
	m.stop()
	store, err := fsm.Open(filepath.Join(m.dir, "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if store.View().Service(fsm.ServiceKey{Namespace: "default", Name: "after-restore"}) == nil ||
		store.View().Service(fsm.ServiceKey{Namespace: "default", Name: "a"}) == nil {
		t.Fatal("restored state not on disk")
	}
}
