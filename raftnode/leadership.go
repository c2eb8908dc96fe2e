package raftnode

import (
	"context"
	"sync"
)

// leadership is the replica's current role as a level: whether it leads and
// in which term. Every change closes the channel that waiters hold.
type leadership struct {
	mu      sync.Mutex
	leader  bool
	term    uint64
	changed chan struct{}
}

func newLeadership() *leadership { return &leadership{changed: make(chan struct{})} }

func (l *leadership) get() (leader bool, term uint64, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader, l.term, l.changed
}

func (l *leadership) set(leader bool, term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !leader {
		term = 0
	}
	if leader == l.leader && term == l.term {
		return
	}
	l.leader, l.term = leader, term
	close(l.changed)
	l.changed = make(chan struct{})
}

// whileLeader runs fn once for each term in which l says this replica leads,
// with a context that ends when that term ends or ctx ends. It waits for fn
// to return before running it again, so at most one fn runs at a time. It
// returns when ctx ends and the last fn has returned.
func (l *leadership) whileLeader(ctx context.Context, fn func(context.Context)) {
	for {
		leader, term, changed := l.get()
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
				nowLeader, nowTerm, nowChanged := l.get()
				if !nowLeader || nowTerm != term {
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
