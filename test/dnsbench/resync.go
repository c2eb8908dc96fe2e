package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kdnsd/kdnsd/test/cluster"
)

// resync is what a new leader's resync cost: the old leader was killed,
// another elected, and its watcher listed the API and diffed it with the
// replicated records until it streamed.
type resync struct {
	elected  time.Duration // kill → a replica reports itself leader
	streamed time.Duration // kill → its watcher streams (the diff is done)
	// entries is how many log entries the cluster appended meanwhile;
	// appliedBefore and appliedAfter are the index of the last command
	// applied to the records (Raft's own entries do not move it), so they
	// are equal when the resync committed no change.
	entries, appliedBefore, appliedAfter uint64
}

// measureResync kills the leader of c with SIGKILL and times its
// successor's resync against the unchanged API state. The killed replica
// stays down.
func measureResync(ctx context.Context, c *cluster.Cluster, timeout time.Duration) (resync, error) {
	var r resync
	old := c.Leader(ctx)
	if old == nil {
		return r, fmt.Errorf("no leader")
	}
	before, err := old.Status(ctx)
	if err != nil {
		return r, err
	}
	killed := time.Now()
	old.Kill()
	for time.Since(killed) < timeout {
		for _, rep := range c.Replicas {
			if rep == old || !rep.Running() {
				continue
			}
			st, err := rep.Status(ctx)
			if err != nil || st.State != "Leader" {
				continue
			}
			if r.elected == 0 {
				r.elected = time.Since(killed)
			}
			if strings.HasPrefix(st.Watcher, "streaming") { // the ConfigMap watcher may add its own state
				r.streamed = time.Since(killed)
				r.entries = st.LastLogIndex - before.LastLogIndex
				r.appliedBefore, r.appliedAfter = before.AppliedIndex, st.AppliedIndex
				return r, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r, fmt.Errorf("no new leader streamed within %v of the kill (elected after %v)", timeout, r.elected)
}
