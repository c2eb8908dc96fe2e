package raftnode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

func TestClassify(t *testing.T) {
	// The text hashicorp/raft v1.8.0 gives a restore it refuses for now.
	restoreRefused := fmt.Errorf("cannot restore snapshot now, wait until the configuration entry at %v has been applied (have applied %v)", 12, 11)
	other := errors.New("disk full")
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: classified as nothing
	}{
		{"leadership lost", raft.ErrLeadershipLost, ErrUnavailable},
		{"transfer in progress", raft.ErrLeadershipTransferInProgress, ErrUnavailable},
		{"aborted by restore", raft.ErrAbortedByRestore, ErrUnavailable},
		{"shut down", raft.ErrRaftShutdown, ErrUnavailable},
		{"enqueue timeout", raft.ErrEnqueueTimeout, ErrUnavailable},
		{"restore refused for now", restoreRefused, ErrRestoreNotNow},
		{"not leader", raft.ErrNotLeader, ErrNotLeader},
		{"other", other, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if !errors.Is(got, tc.err) || got.Error() != tc.err.Error() {
				t.Errorf("classify(%v) = %v: does not keep raft's error and text", tc.err, got)
			}
			for _, class := range []error{ErrUnavailable, ErrRestoreNotNow, ErrNotLeader} {
				if is := errors.Is(got, class); is != (class == tc.want) {
					t.Errorf("classify(%v): errors.Is %v = %v", tc.err, class, is)
				}
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
}
