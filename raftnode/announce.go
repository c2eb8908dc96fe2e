package raftnode

import "sync/atomic"

// A follower learns that an entry is committed only from the leader's next
// AppendEntries request. hashicorp/raft sends one when a newer entry is
// appended, or CommitTimeout to twice that after the last one; a change
// with nothing committed after it would reach the followers' answers that
// much later than the leader's. The announcer closes that gap: after a
// commit with no other commit in flight it appends a barrier (an entry no
// state machine sees), whose AppendEntries carries the new commit index to
// every follower at once. While commits overlap or follow each other (the
// watcher appends a batch beside the one in flight, or right after it),
// the commit still in flight announces the earlier one when it ends: by
// its own barrier, or by the entry appended after it.

// announcer appends those barriers, at most one at a time.
type announcer struct {
	// inFlight counts Commit calls whose entry is not known committed yet.
	inFlight atomic.Int64
	// committed is signalled (without blocking) after each commit.
	committed chan struct{}
	// barriers counts the barriers appended, for tests and metrics.
	barriers atomic.Uint64
}

func newAnnouncer() *announcer { return &announcer{committed: make(chan struct{}, 1)} }

// begin and end bracket one Commit; ok says whether its entry committed.
func (a *announcer) begin() { a.inFlight.Add(1) }

func (a *announcer) end(ok bool) {
	a.inFlight.Add(-1)
	if ok {
		select {
		case a.committed <- struct{}{}:
		default: // a signal is pending: it covers this commit too
		}
	}
}

// run appends a barrier for each signalled commit that no commit in flight
// will announce, until stop closes. Commits signalled while a barrier is
// appended are covered by one more barrier after it.
func (a *announcer) run(n *Node) {
	for {
		select {
		case <-n.stop:
			return
		case <-a.committed:
		}
		if a.inFlight.Load() > 0 {
			continue // that commit's own end signals again
		}
		a.barriers.Add(1)
		// The error is that of a lost leadership or a shutdown: there is
		// then nothing left to announce.
		_ = n.raft.Barrier(0).Error()
	}
}
