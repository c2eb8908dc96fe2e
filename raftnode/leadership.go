package raftnode

import (
	"context"
	"sync"
)

// leadership is the replica's current role as a level: whether it leads, in
// which term, and in which run of leader-only work within that term. Every
// change closes the channel that waiters hold.
type leadership struct {
	mu      sync.Mutex
	leader  bool
	run     leaderRun
	changed chan struct{}
}

// leaderRun names one run of leader-only work: a term, and how often that
// work was restarted within it.
type leaderRun struct{ term, restarts uint64 }

func newLeadership() *leadership { return &leadership{changed: make(chan struct{})} }

func (l *leadership) get() (leader bool, run leaderRun, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader, l.run, l.changed
}

// restart ends the current run of leader-only work and starts another in
// the same term: after the state was replaced underneath it (a restore), the
// work starts again from that state.
func (l *leadership) restart() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leader {
		return
	}
	l.run.restarts++
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *leadership) set(leader bool, term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !leader {
		term = 0
	}
	if leader == l.leader && term == l.run.term {
		return
	}
	l.leader, l.run = leader, leaderRun{term: term}
	close(l.changed)
	l.changed = make(chan struct{})
}

// whileLeader runs fn once for each term in which l says this replica leads
// (and again after each restart), with a context that ends when that run ends
// or ctx ends. It waits for fn
// to return before running it again, so at most one fn runs at a time. It
// returns when ctx ends and the last fn has returned.
func (l *leadership) whileLeader(ctx context.Context, fn func(context.Context)) {
	for {
		leader, run, changed := l.get()
		if leader {
			termCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				fn(termCtx)
			}()
			waitDone := (<-chan struct{})(done)
		term:
			for {
				nowLeader, nowRun, nowChanged := l.get()
				if !nowLeader || nowRun != run {
					break
				}
				select {
				case <-ctx.Done():
					break term
				case <-nowChanged:
				case <-waitDone:
					// fn gave up before its term ended: wait for the term to end.
					waitDone = nil
				}
			}
			cancel()
			<-done
			if ctx.Err() != nil {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
