package raftnode

import (
	"fmt"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestEmptyReplicaRejoinsFromSnapshot: a replica that lost its data dir is
// sent a snapshot once the log it needs has been compacted away.
func TestEmptyReplicaRejoinsFromSnapshot(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	lost := followerOf(ms, leader)
	peers := peersOf(ms)
	lost.stop()
	for i := range 20 {
		commit(t, leader, fsm.UpsertService(service(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.1.%d", i+1))))
	}
	if err := leader.node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	// Compact the leader's log so the lost replica cannot be sent entries.
	rc := leader.node.raft.ReloadableConfig()
	rc.TrailingLogs = 0
	if err := leader.node.raft.ReloadConfig(rc); err != nil {
		t.Fatal(err)
	}
	// One more entry, so that the second snapshot is of another index:
	// raft names a snapshot term-index-milliseconds, and two of one index
	// within a millisecond collide.
	commit(t, leader, fsm.UpsertService(service("s20", "10.96.1.21")))
	if err := leader.node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	lost.dir = t.TempDir()
	lost.start(t, peers)
	wait.For(t, "empty replica to receive the snapshot", 15*time.Second, func() bool { return hasService(lost, "s20") })
	if n, _ := lost.store.View().Counts(); n != 21 {
		t.Fatalf("%d services after snapshot, want 21", n)
	}
}
