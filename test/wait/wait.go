// Package wait is how kdnsd's tests wait: by polling a condition until it
// holds or a deadline passes, never by sleeping a fixed time. Every poll loop
// of the tests and of test/testenv goes through Until (or UntilEvery).
package wait

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// interval is how often a condition is checked: short next to what the tests
// wait for (a Raft round, an informer event), long next to a check's cost.
const interval = 5 * time.Millisecond

// Until checks cond until it reports true or an error, or ctx ends. It
// returns cond's error, or one naming what was awaited and ctx's error.
func Until(ctx context.Context, what string, cond func() (bool, error)) error {
	return every(ctx, interval, what, cond)
}

// UntilEvery is Until with the interval given: for a condition that costs
// the process it asks (a list of 100k objects, a scrape of its metrics) and
// is awaited for seconds to minutes, where asking every few milliseconds
// would be a load of its own.
func UntilEvery(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	return every(ctx, interval, what, cond)
}

// Timing checks cond every 200µs until it holds, and reports whether it did
// within timeout: for measuring how long something of a few milliseconds
// takes, to a tenth of one, where Poll's interval would be the error.
func Timing(timeout time.Duration, cond func() bool) bool {
	return pollEvery(timeout, 200*time.Microsecond, cond)
}

func every(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Poll checks cond until it holds, and reports whether it did within timeout.
func Poll(timeout time.Duration, cond func() bool) bool {
	return pollEvery(timeout, interval, cond)
}

func pollEvery(timeout, interval time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return every(ctx, interval, "", func() (bool, error) { return cond(), nil }) == nil
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
