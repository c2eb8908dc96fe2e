package raftnode

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestCommitIsAnnounced: a lone commit is followed by exactly one barrier,
// which carries its commit index to the followers; commits made one after
// the other, as the watcher makes them, need one barrier after the last.
func TestCommitIsAnnounced(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	a := leader.node.announce
	before := a.barriers.Load()
	commit(t, leader, fsm.UpsertService(service("lone", "10.96.0.1")))
	wait.For(t, "the barrier after a lone commit", 10*time.Second, func() bool { return endsWithBarrier(leader) })
	if got := a.barriers.Load() - before; got != 1 {
		t.Fatalf("%d barriers after one commit, want 1", got)
	}
	for _, m := range ms {
		wait.For(t, m.id+" to apply the lone commit", 10*time.Second, func() bool { return hasService(m, "lone") })
	}

	before = a.barriers.Load()
	const n = 20
	for i := range n {
		commit(t, leader, fsm.UpsertService(service(fmt.Sprintf("serial-%d", i), "10.96.0.2")))
	}
	// Whether a barrier slips in between two commits depends on the
	// scheduler; what must hold is that the last one is announced: the log
	// ends with a barrier.
	wait.For(t, "a barrier after the last commit", 10*time.Second, func() bool { return endsWithBarrier(leader) })
	for _, m := range ms {
		wait.For(t, m.id+" to apply the last commit", 10*time.Second, func() bool { return hasService(m, fmt.Sprintf("serial-%d", n-1)) })
	}
	t.Logf("%d barriers for %d commits made one after the other", a.barriers.Load()-before, n)
}

// endsWithBarrier reports whether m's log ends with a barrier that m has
// applied.
func endsWithBarrier(m *member) bool {
	var l raft.Log
	last := m.node.raft.LastIndex()
	return m.node.logStore.GetLog(last, &l) == nil && l.Type == raft.LogBarrier && m.node.raft.AppliedIndex() == last
}
