package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
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

// TestReleaserDue: a release is due once a look finds the allocation
// stopped and more garbage than the threshold above what the last release
// left.
func TestReleaserDue(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name      string
		floor     uint64
		allocated uint64 // since the last look
		garbage   uint64
		want      bool
	}{
		{"a burst over", 0, 1 * mb, 200 * mb, true},
		{"a burst going on", 0, 100 * mb, 200 * mb, false},
		{"just under quiet", 0, 4*mb - 1, 64 * mb, true},
		{"4 MiB allocated: busy", 0, 4 * mb, 200 * mb, false},
		{"little garbage", 0, 0, 64*mb - 1, false},
		{"only what the last release left", 66 * mb, 0, 69 * mb, false},
		{"a burst over after a release", 66 * mb, 0, 130 * mb, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &releaser{quiet: 4 * mb, above: 64 * mb, last: heapNow{allocated: 1000 * mb}, floor: tc.floor}
			if got := r.due(heapNow{garbage: tc.garbage, allocated: 1000*mb + tc.allocated}); got != tc.want {
				t.Errorf("due = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("the floor falls when the holes fill", func(t *testing.T) {
		r := &releaser{quiet: 4 * mb, above: 64 * mb, floor: 66 * mb}
		if r.due(heapNow{garbage: 10 * mb}) {
			t.Fatal("due with 10 MiB of garbage")
		}
		if !r.due(heapNow{garbage: 80 * mb}) {
			t.Error("not due with 70 MiB of garbage above the 10 MiB a look found")
		}
	})
}

// garbageSink keeps the test's allocations on the heap.
var garbageSink [][]byte

// TestReleaseAfterBursts: garbage left by a burst of allocation is
// collected and given back to the OS once the allocation stops, and what
// else a burst left (the Raft log's mapped pages) is released with it.
func TestReleaseAfterBursts(t *testing.T) {
	// No collection of its own while the test makes garbage.
	gcPercent := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(gcPercent) })
	const above = 16 << 20
	burst := func() {
		for range 64 {
			garbageSink = append(garbageSink, make([]byte, 1<<20))
		}
		garbageSink = nil
	}
	burst()
	if h := readHeap(); h.garbage < above {
		t.Fatalf("the test made %d bytes of garbage, want at least %d", h.garbage, above)
	}

	var released atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		releaseAfterBursts(ctx, 10*time.Millisecond, 1<<20, above, func() {
			// Called after the collection and its scavenge: the garbage
			// is gone by now.
			if g := readHeap().garbage; g >= above {
				t.Errorf("%d bytes of garbage left after the release", g)
			}
			released.Store(true)
		}, slog.New(slog.DiscardHandler))
		close(done)
	}()
	defer func() { cancel(); <-done }()
	wait.For(t, "the garbage and the rest given back, once the allocation stopped", 10*time.Second, func() bool {
		if !released.Load() && readHeap().garbage < above {
			// Collected by another test's forced collection (the end
			// of a load collects on a goroutine of its own): again.
			burst()
		}
		return released.Load()
	})
}
