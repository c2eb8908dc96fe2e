package raftnode

import (
	"errors"
	"strings"

	"github.com/hashicorp/raft"
)

// State is a replica's role in the Raft group, as Status reports it: the
// names hashicorp/raft gives its states.
type State string

// The states a replica reports.
const (
	StateFollower  State = "Follower"
	StateCandidate State = "Candidate"
	StateLeader    State = "Leader"
	StateShutdown  State = "Shutdown"
)

func stateOf(s raft.RaftState) State { return State(s.String()) }

// Errors of the Node's requests, by what the caller can do about them; the
// error returned wraps one of them and keeps hashicorp/raft's own error and
// text. Callers test them with errors.Is.
var (
	// ErrNotLeader: the request must go to the leader.
	ErrNotLeader = raft.ErrNotLeader
	// ErrUnavailable: the group cannot take the request now (leadership
	// was lost or is being transferred, a restore aborted it, Raft is
	// shutting down, or its queue stayed full); it may succeed when
	// retried, on this replica or on the next leader.
	ErrUnavailable = errors.New("raft cannot take the request now")
	// ErrRestoreNotNow: the leader refuses a restore until it has applied
	// its newest configuration change; retry shortly.
	ErrRestoreNotNow = errors.New("a restore must wait for the newest configuration change to be applied")
	// ErrUnknownServer: no server of that ID is in the configuration.
	ErrUnknownServer = errors.New("no such server in the raft configuration")
	// ErrCantBootstrap: Bootstrap on a replica that has state.
	ErrCantBootstrap = raft.ErrCantBootstrap
)

// classified is an error of hashicorp/raft with the error above that says
// what it means to the caller; its text is raft's.
type classified struct {
	error
	class error
}

func (e classified) Unwrap() []error { return []error{e.class, e.error} }

// classify wraps err, an error of hashicorp/raft, in the error that says what
// it means to the caller, if it is one that has a meaning there.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore), errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrEnqueueTimeout):
		return classified{err, ErrUnavailable}
	case strings.HasPrefix(err.Error(), "cannot restore snapshot now"):
		// hashicorp/raft (v1.8.0 raft.go, restoreUserSnapshot) makes this
		// refusal with fmt.Errorf and no error value to compare with.
		return classified{err, ErrRestoreNotNow}
	}
	return err
}
