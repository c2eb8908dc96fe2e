package raftnode

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
)

// stateMachine adapts the durable fsm.Store to raft.BatchingFSM.
type stateMachine struct {
	store *fsm.Store
	snaps raft.SnapshotStore
	log   *slog.Logger
	// stop is closed when the node starts to shut down: a blocked apply
	// then returns, so that Raft can shut down.
	stop <-chan struct{}
}

var _ raft.BatchingFSM = (*stateMachine)(nil)

func (m *stateMachine) Apply(l *raft.Log) any { return m.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies the command entries of logs in one durable write. The
// result for each log is nil, or the error that stopped the store before
// it.
//
// When the store stops at an entry it cannot decode (fsm.BlockedError),
// ApplyBatch does not return until the node shuts down: hashicorp/raft counts
// every entry of a batch as applied once ApplyBatch returns, and would go on
// with the next batch. The store still ends before that entry on disk, and
// Raft starts again from its last snapshot, which cannot be later (Snapshot
// refuses while blocked): so a replica restarted with a build that decodes the
// entry applies it and the rest of the log.
func (m *stateMachine) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]fsm.Entry, 0, len(logs))
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			entries = append(entries, fsm.Entry{Index: l.Index, Data: l.Data, AppendedAt: l.AppendedAt})
		}
	}
	results := make([]any, len(logs))
	err := m.store.ApplyEntries(entries)
	var blocked *fsm.BlockedError
	switch {
	case errors.As(err, &blocked):
		<-m.stop
		for i, l := range logs {
			if l.Index >= blocked.Index {
				results[i] = err
			}
		}
	case err != nil:
		// Raft already counts these entries as applied; going on would
		// serve a state that is not on disk and break the monotonic
		// guarantee. Stopping lets the replica restart from its file and
		// apply the log again.
		m.log.Error("cannot persist applied log entries; stopping", "err", err)
		panic(fmt.Sprintf("kdnsd: state machine write failed: %v", err))
	}
	return results
}

// Snapshot captures the current View; Views are immutable, so Persist may
// run while later entries are applied. A blocked store has no snapshot:
// Raft would record it as of the index it counts as applied, past the entry
// the store stopped at, and never apply that entry again.
func (m *stateMachine) Snapshot() (raft.FSMSnapshot, error) {
	if b := m.store.Blocked(); b != nil {
		return nil, b
	}
	return viewSnapshot{m.store.View()}, nil
}

// Restore is called with a snapshot that Raft has just persisted, sent by
// the leader or restored by an operator; it is the newest in the store, and
// its index there is the one the state takes.
func (m *stateMachine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	list, err := m.snaps.List()
	if err != nil || len(list) == 0 {
		return fmt.Errorf("restore: cannot find the snapshot being restored: %v", err)
	}
	return m.store.Restore(rc, list[0].Index)
}

type viewSnapshot struct{ view *fsm.View }

func (s viewSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := fsm.WriteSnapshot(sink, s.view); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (viewSnapshot) Release() {}
