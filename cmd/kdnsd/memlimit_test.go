package main

import (
	"runtime/debug"
	"testing"
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
