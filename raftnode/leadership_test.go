package raftnode

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestWhileLeaderRuns drives the leadership level by hand: one run per term,
// a new run after a restart, none while following, and never two at once,
// whatever duplicate notifications arrive.
func TestWhileLeaderRuns(t *testing.T) {
	l := newLeadership()
	var runs, running, overlap atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.whileLeader(ctx, func(run context.Context) {
			runs.Add(1)
			if running.Add(1) > 1 {
				overlap.Add(1)
			}
			<-run.Done()
			running.Add(-1)
		})
	}()
	steps := []struct {
		name     string
		do       func()
		wantRuns int32
		running  int32
	}{
		{"follower", func() { l.set(false, 0) }, 0, 0},
		{"leads term 3", func() { l.set(true, 3) }, 1, 1},
		{"duplicate notification", func() { l.set(true, 3) }, 1, 1},
		{"restart after a restore", l.restart, 2, 1},
		{"new term without a gap", func() { l.set(true, 5) }, 3, 1},
		{"steps down", func() { l.set(false, 0) }, 3, 0},
		{"restart while following does nothing", l.restart, 3, 0},
		{"leads again", func() { l.set(true, 7) }, 4, 1},
	}
	for _, s := range steps {
		s.do()
		wait.For(t, s.name, 5*time.Second, func() bool { return runs.Load() == s.wantRuns && running.Load() == s.running })
	}
	cancel()
	<-done
	if overlap.Load() > 0 {
		t.Fatalf("%d times two runs at once", overlap.Load())
	}
}
