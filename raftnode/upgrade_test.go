package raftnode

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"

	"github.com/kdnsd/kdnsd/test/wait"
)

// shutdownAll stops every member at once and waits for each to return.
func shutdownAll(t *testing.T, ms []*member) {
	t.Helper()
	done := make(chan struct{}, len(ms))
	for _, m := range ms {
		go func() {
			m.stop()
			done <- struct{}{}
		}()
	}
	for range ms {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a member whose state machine is blocked did not shut down")
		}
	}
}

// TestUndecodableEntryStopsApplying: an entry in a command format newer than
// this build's stops every replica at that entry. Nothing after it is
// applied, the status says so, shutdown still completes, and a restarted
// replica is handed the entry again (it was not counted as applied), so a
// build that decodes it would apply it.
func TestUndecodableEntryStopsApplying(t *testing.T) {
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	commit(t, leader, fsm.UpsertService(service("before", "10.96.0.1")))
	wait.For(t, "every replica to apply", 10*time.Second, func() bool {
		for _, m := range ms {
			if !hasService(m, "before") {
				return false
			}
		}
		return true
	})
	newer, err := fsm.Encode([]fsm.Command{fsm.UpsertService(service("newer", "10.96.0.2"))})
	if err != nil {
		t.Fatal(err)
	}
	newer[0] = byte(fsm.MaxCommandVersion + 1)
	// Written as a newer leader would; neither this entry nor the next is
	// ever applied here, so their futures are not waited for.
	f := leader.node.raft.Apply(newer, 0)
	applied := make(chan struct{})
	go func() {
		f.Error()
		close(applied)
	}()
	leader.node.raft.Apply(mustEncode(t, fsm.UpsertService(service("after", "10.96.0.3"))), 0)
	var badIndex uint64
	wait.For(t, "every replica to stop at the newer entry", 10*time.Second, func() bool {
		for _, m := range ms {
			b := m.node.ApplyBlocked()
			if b == nil {
				return false
			}
			badIndex = b.Index
		}
		return true
	})
	if f.Index() != badIndex {
		t.Fatalf("blocked at %d, the newer entry is %d", badIndex, f.Index())
	}
	for _, m := range ms {
		st := m.node.Status()
		// (a barrier may lie between "before" and the newer entry)
		if st.AppliedIndex >= badIndex || !hasService(m, "before") || hasService(m, "newer") || hasService(m, "after") {
			t.Fatalf("%s: applied index %d (blocked at %d)", m.id, st.AppliedIndex, badIndex)
		}
		if st.ApplyBlockedIndex != badIndex || !strings.Contains(st.ApplyBlocked, "cannot decode") {
			t.Fatalf("%s status: blocked %q at %d", m.id, st.ApplyBlocked, st.ApplyBlockedIndex)
		}
		if st.MaxCommandVersion != fsm.MaxCommandVersion {
			t.Fatalf("%s advertises command format %d", m.id, st.MaxCommandVersion)
		}
	}
	wait.For(t, "the entry after it to be committed", 10*time.Second, func() bool {
		return leader.node.raft.CommitIndex() > badIndex
	})
	if hasService(leader, "after") {
		t.Fatal("an entry after the blocked one was applied")
	}
	// Raft counts an entry as applied once the state machine returns from
	// its batch: it must not, while blocked.
	select {
	case <-applied:
		t.Fatal("raft was told the blocked entry is applied")
	default:
	}

	peers := peersOf(ms)
	shutdownAll(t, ms)
	for _, m := range ms {
		m.start(t, peers)
	}
	wait.For(t, "restarted replicas to be handed the entry again", 20*time.Second, func() bool {
		for _, m := range ms {
			if b := m.node.ApplyBlocked(); b == nil || b.Index != badIndex {
				return false
			}
		}
		return true
	})
	for _, m := range ms {
		if m.store.View().Index() >= badIndex || !hasService(m, "before") || hasService(m, "after") {
			t.Fatalf("%s: restarted at index %d", m.id, m.store.View().Index())
		}
	}
}

// TestBlockedStoreHasNoSnapshot: a snapshot taken while blocked would carry
// an index past the entry the store stopped at, and Raft would never hand
// that entry over again.
func TestBlockedStoreHasNoSnapshot(t *testing.T) {
	store, err := fsm.Open(filepath.Join(t.TempDir(), "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := &stateMachine{store: store}
	if _, err := m.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := store.ApplyEntries([]fsm.Entry{{Index: 1, Data: []byte{byte(fsm.MaxCommandVersion + 1)}}}); err == nil {
		t.Fatal("an entry in an unknown format applied")
	}
	var blocked *fsm.BlockedError
	if _, err := m.Snapshot(); !errors.As(err, &blocked) {
		t.Fatalf("snapshot of a blocked store: %v", err)
	}
}

// TestCommandVersionHoldsForOneTerm: the leader writes the command format
// it was told for its term, and format 1 in any later term until told again.
func TestCommandVersionHoldsForOneTerm(t *testing.T) {
	newest := fsm.MaxCommandVersion
	ms := newCluster(t, 3)
	leader := leaderOf(t, ms)
	if err := leader.node.SetCommandVersion(fsm.MaxCommandVersion + 1); err == nil {
		t.Fatal("accepted a command format this build cannot write")
	}
	if v := leader.node.Status().CommandVersion; v != fsm.BaseCommandVersion {
		t.Fatalf("a new leader writes format %d", v)
	}
	if err := leader.node.SetCommandVersion(newest); err != nil {
		t.Fatal(err)
	}
	if v := leader.node.Status().CommandVersion; v != newest {
		t.Fatalf("leader writes format %d after being told %d", v, newest)
	}
	commit(t, leader, fsm.UpsertService(service("v2", "10.96.0.2")))
	var last raft.Log
	idx, _ := leader.node.logStore.LastIndex()
	if err := leader.node.logStore.GetLog(idx, &last); err != nil || last.Type != raft.LogCommand || int(last.Data[0]) != newest {
		t.Fatalf("last log entry %d: %v, type %v, data %q", idx, err, last.Type, last.Data)
	}
	wait.For(t, "every replica to apply the newest format's entry", 10*time.Second, func() bool {
		for _, m := range ms {
			if !hasService(m, "v2") {
				return false
			}
		}
		return true
	})

	// Leadership moves away and back: two new terms.
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	other := followerOf(ms, leader)
	if _, err := leader.node.TransferLeadership(ctx, other.id); err != nil {
		t.Fatal(err)
	}
	wait.For(t, other.id+" to lead", 10*time.Second, func() bool { return other.node.IsLeader() })
	if v := other.node.Status().CommandVersion; v != fsm.BaseCommandVersion {
		t.Fatalf("the next leader writes format %d untold", v)
	}
	if _, err := other.node.TransferLeadership(ctx, leader.id); err != nil {
		t.Fatal(err)
	}
	wait.For(t, leader.id+" to lead again", 10*time.Second, func() bool { return leader.node.IsLeader() })
	if v := leader.node.Status().CommandVersion; v != fsm.BaseCommandVersion {
		t.Fatalf("a leader told a newer format in an earlier term writes format %d", v)
	}
}

func mustEncode(t *testing.T, cmds ...fsm.Command) []byte {
	t.Helper()
	data, err := fsm.Encode(cmds)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
