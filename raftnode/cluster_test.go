package raftnode

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"

	"github.com/kdnsd/kdnsd/test/wait"
)

func TestCommitReachesEveryReplica(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	commit(t, leader, fsm.UpsertService(service("web", "10.96.0.10")), fsm.UpsertService(service("api", "10.96.0.11")))
	for _, m := range ms {
		wait.For(t, m.id+" to apply", 5*time.Second, func() bool { return hasService(m, "web") && hasService(m, "api") })
	}
	if st := leader.node.Status(); st.State != "Leader" || st.LeaderID != leader.id || len(st.Servers) != 3 || st.AppliedIndex == 0 {
		t.Errorf("leader status %+v", st)
	}
}

// TestAppendedAtReachesFollowers: the time the leader appended an entry
// (raft.Log.AppendedAt) reaches every replica's View, followers' included.
func TestAppendedAtReachesFollowers(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	before := time.Now()
	commit(t, leader, fsm.UpsertService(service("web", "10.96.0.10")))
	after := time.Now()
	for _, m := range ms {
		wait.For(t, m.id+" to apply", 5*time.Second, func() bool { return hasService(m, "web") })
		// One clock in this test: the leader's stamp falls within the commit.
		if at := m.store.View().AppendedAt(); at.Before(before) || at.After(after) {
			t.Errorf("%s: AppendedAt %v, not within the commit (%v to %v)", m.id, at, before, after)
		}
	}
}

func TestCommitOnFollowerFails(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	for _, m := range ms {
		if m == leader {
			continue
		}
		err := m.node.Commit(context.Background(), []fsm.Command{fsm.UpsertService(service("web", "10.96.0.10"))})
		if !errors.Is(err, ErrNotLeader) {
			t.Errorf("commit on follower %s: %v", m.id, err)
		}
	}
}

// TestWhileLeaderRunsOnExactlyOneReplica checks the leadership signal across
// a failover: one runner while there is a leader, and a new one after it dies.
func TestWhileLeaderRunsOnExactlyOneReplica(t *testing.T) {
	ms := newCluster(t, 3)
	var running, maxRunning, terms atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, len(ms))
	for _, m := range ms {
		go func(n *Node) {
			n.WhileLeader(ctx, func(term context.Context) {
				terms.Add(1)
				if r := running.Add(1); r > maxRunning.Load() {
					maxRunning.Store(r)
				}
				<-term.Done()
				running.Add(-1)
			})
			done <- struct{}{}
		}(m.node)
	}
	leader := leaderOf(t, ms)
	wait.For(t, "one runner", 5*time.Second, func() bool { return running.Load() == 1 })
	leader.stop()
	wait.For(t, "a runner on the new leader", 10*time.Second, func() bool { return terms.Load() >= 2 && running.Load() == 1 })
	// Leadership can briefly overlap during an election (the old leader
	// steps down on its own lease); two runners at once must not happen here
	// because the old leader shut down first.
	if maxRunning.Load() > 1 {
		t.Errorf("%d runners at once", maxRunning.Load())
	}
	cancel()
	for range ms {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("WhileLeader did not return after cancel")
		}
	}
}

func TestShutdownOfLeaderTransfersLeadership(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	term := leader.node.Status().Term
	start := time.Now()
	leader.stop()
	next := leaderOf(t, ms)
	if next == leader {
		t.Fatal("stopped replica still leads")
	}
	t.Logf("new leader %s after %s (term %d → %d)", next.id, time.Since(start), term, next.node.Status().Term)
	commit(t, next, fsm.UpsertService(service("after", "10.96.0.12")))
}
