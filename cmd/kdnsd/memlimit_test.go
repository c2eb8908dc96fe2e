package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestCollectLessWhileLoading: the load raises GOGC only above the
// operator's, and its end gives the operator's back.
func TestCollectLessWhileLoading(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	for _, operator := range []int{50, 100, loadGCPercent, 1000, -1} {
		debug.SetGCPercent(operator)
		loaded := collectLessWhileLoading()
		during := debug.SetGCPercent(operator)
		debug.SetGCPercent(during)
		if want := max(operator, loadGCPercent); operator >= 0 && during != want || operator < 0 && during != -1 {
			t.Errorf("GOGC %d: %d while loading", operator, during)
		}
		loaded()
		if after := debug.SetGCPercent(operator); after != operator {
			t.Errorf("GOGC %d: %d after the load", operator, after)
		}
	}
}

// garbageSink keeps the test's allocations on the heap.
var garbageSink [][]byte

// TestReleaseAfterBursts: garbage left by a burst of allocation is
// collected and given back to the OS once the allocation stops.
func TestReleaseAfterBursts(t *testing.T) {
	// No collection of its own while the test makes garbage.
	gcPercent := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(gcPercent) })
	const above = 16 << 20
	forced := func() uint64 {
		s := []runtimemetrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		runtimemetrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := forced()
	for range 64 {
		garbageSink = append(garbageSink, make([]byte, 1<<20))
	}
	garbageSink = nil
	if h := readHeap(); h.garbage < above {
		t.Fatalf("the test made %d bytes of garbage, want at least %d", h.garbage, above)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		releaseAfterBursts(ctx, 10*time.Millisecond, 1<<20, above, slog.New(slog.DiscardHandler))
		close(done)
	}()
	defer func() { cancel(); <-done }()
	// The collection is counted before the scavenge that follows it ends.
	wait.For(t, "a forced collection, the heap given back, once the allocation stopped", 10*time.Second, func() bool {
		return forced() > before && readHeap().garbage < above
	})
}
