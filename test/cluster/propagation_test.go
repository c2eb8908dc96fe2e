package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestPropagation measures API write → answered by all three replicas over
// 100 writes, with Raft in plaintext and over mutual TLS (with the per-RPC
// identity check) in the same run. The figures are logged (run with -v); what
// is asserted is that every write reaches every replica, not how fast, which
// depends on the machine.
func TestPropagation(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plaintext", false}, {"mutual TLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tls {
				c.ExtraArgs, _, _ = raftCA(t)
			}
			stopOnCleanup(t, c)
			if err := c.StartAll(); err != nil {
				t.Fatal(err)
			}
			measurePropagation(t, c, tc.name)
		})
	}
}

// propagationWrites is how many services measurePropagation creates: enough
// for a p99.
const propagationWrites = 100

func measurePropagation(t *testing.T, c *Cluster, what string) {
	waitLeader(t, c)
	cs := admin(t)
	ns := namespace(t, cs)
	var fromAck, fromCall []time.Duration
	first := make([][]time.Duration, len(c.Replicas)) // per replica, from the acknowledgement
	// The leader's last log index: the largest.
	lastIndex := func() (last uint64) {
		for _, r := range c.Replicas {
			st, err := r.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			last = max(last, st.LastLogIndex)
		}
		return last
	}
	before := lastIndex()
	for i := range propagationWrites {
		name := fmt.Sprintf("p%d", i)
		call := time.Now()
		ip := createService(t, cs, ns, name).String()
		ack := time.Now()
		var wg sync.WaitGroup
		for i, r := range c.Replicas {
			wg.Go(func() {
				if !wait.Timing(30*time.Second, func() bool { return answersA(r, fqdn(name, ns), ip) }) {
					t.Errorf("%s did not answer %s", r.ID, name)
				}
				first[i] = append(first[i], time.Since(ack))
			})
		}
		wg.Wait()
		fromAck = append(fromAck, time.Since(ack))
		fromCall = append(fromCall, time.Since(call))
	}
	// Raft log entries per write (the change and the barrier that announces
	// its commit); each costs an fsync of the log on every replica.
	entries := float64(lastIndex()-before) / propagationWrites
	t.Logf("propagation (%s) over %d writes, answered by all 3 replicas: from the API's acknowledgement %s; from the create call %s; %.2f log entries per write",
		what, propagationWrites, percentiles(fromAck), percentiles(fromCall), entries)
	for i, r := range c.Replicas {
		t.Logf("  %s alone: %s", r.ID, percentiles(first[i]))
	}
	// Every replica, followers included, observed the programming latency
	// of each write it served (before it served it), and counted the
	// queries asked.
	for _, r := range c.Replicas {
		count, _ := strconv.ParseFloat(metric(t, r, "kdnsd_dns_programming_duration_seconds_count"), 64)
		sum, _ := strconv.ParseFloat(metric(t, r, "kdnsd_dns_programming_duration_seconds_sum"), 64)
		if count < propagationWrites {
			t.Errorf("%s: %g programming latency observations after %d writes", r.ID, count, propagationWrites)
		}
		if a, _ := strconv.ParseFloat(metric(t, r, `kdnsd_dns_requests_total\{transport="udp",type="A"\}`), 64); a < propagationWrites {
			t.Errorf("%s: %g UDP A queries counted after %d answered", r.ID, a, propagationWrites)
		}
		t.Logf("%s: programming latency (leader's append → served here) mean %.2f ms over %g indexes", r.ID, 1000*sum/max(count, 1), count)
	}
	// The leader (the only one that watched) observed each write from its
	// informer event to its commit. It observes once Commit returns, after
	// the FSM applied the entry, so every replica may answer the last write
	// before it does: the count is waited for, not read once.
	var events, waited float64
	if !wait.Poll(10*time.Second, func() bool {
		events, waited = 0, 0
		for _, r := range c.Replicas {
			n, _ := strconv.ParseFloat(metric(t, r, "kdnsd_watcher_event_to_commit_seconds_count"), 64)
			sum, _ := strconv.ParseFloat(metric(t, r, "kdnsd_watcher_event_to_commit_seconds_sum"), 64)
			events, waited = events+n, waited+sum
		}
		return events >= propagationWrites
	}) {
		t.Errorf("%g event-to-commit observations after %d writes", events, propagationWrites)
	}
	t.Logf("on the leader, informer event → committed: mean %.2f ms over %g changes", 1000*waited/max(events, 1), events)
}

// percentiles says p50, p99 and max of ds.
func percentiles(ds []time.Duration) string {
	at := func(p float64) time.Duration { return Percentile(ds, p).Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", at(50), at(99), at(100))
}
