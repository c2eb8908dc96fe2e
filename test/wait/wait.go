// Package wait is how kdnsd's tests wait: by polling a condition until it
// holds or a deadline passes, never by sleeping a fixed time.
package wait

import (
	"testing"
	"time"
)

// interval is how often a condition is checked: short next to what the tests
// wait for (a Raft round, an informer event), long next to a check's cost.
const interval = 5 * time.Millisecond

// Poll checks cond until it holds, and reports whether it did within timeout.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// For fails the test unless cond holds within timeout, and returns how long
// that took.
func For(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
	return time.Since(start)
}
