package raftnode

import (
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
)

// commandVersion is the command format a leader writes, as decided in one
// term.
type commandVersion struct {
	version int
	term    uint64
}

// SetCommandVersion sets the command format this replica writes while it
// leads in the current term: the newest format every server of the cluster
// decodes (membership works it out). It holds for the current term only; a
// replica writes format 1, which every release decodes, in any term until it
// is told otherwise, so a version decided in an older term, for an older
// configuration, is never used. A replica without membership (static peers)
// is never told, and writes format 1.
func (n *Node) SetCommandVersion(version int) error {
	if version < fsm.BaseCommandVersion || version > fsm.MaxCommandVersion {
		return fmt.Errorf("command format %d: this build writes formats %d to %d", version, fsm.BaseCommandVersion, fsm.MaxCommandVersion)
	}
	term := n.raft.CurrentTerm()
	if prev := n.commandVersion.Swap(&commandVersion{version, term}); prev == nil || prev.version != version {
		n.log.Info("command format for log entries this replica writes", "version", version, "term", term)
	}
	return nil
}

// CommandVersion is the command format Commit encodes with now.
func (n *Node) CommandVersion() int {
	if v := forcedCommandVersion(); v != 0 {
		return v
	}
	if cv := n.commandVersion.Load(); cv != nil && cv.term == n.raft.CurrentTerm() {
		return cv.version
	}
	return fsm.BaseCommandVersion
}

// ApplyBlocked returns what stopped this replica from applying the log (an
// entry its build cannot decode), or nil while it applies.
func (n *Node) ApplyBlocked() *fsm.BlockedError { return n.store.Blocked() }

// handOverLeadership hands leadership to another voter when this replica
// leads but has stopped applying the log. Such a leader must not stay: it
// cannot apply what its watcher commits, and once the state machine's queue
// is full its Raft loop stalls while its heartbeats still keep the others
// from electing a leader that can. It runs on every leadership check
// (followLeadership: on each leadership change and every second, long before
// the queue can fill, as the blocked leader's watcher waits for its first
// commit to apply), one hand-over at a time.
func (n *Node) handOverLeadership() {
	if n.store.Blocked() == nil || n.raft.State() != raft.Leader || !n.handingOver.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer n.handingOver.Store(false)
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("cannot hand leadership over; this replica leads but cannot apply the log", "err", err)
			return
		}
		n.log.Warn("handed leadership over: this replica cannot apply the log")
	}()
}
