package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kdnsd/kdnsd/internal/boltmap/boltmaptest"
	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/wait"
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
	streamed := func() bool {
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
				return true
			}
		}
		return false
	}
	if !wait.Poll(timeout, streamed) {
		return r, fmt.Errorf("no new leader streamed within %v of the kill (elected after %v)", timeout, r.elected)
	}
	return r, nil
}

// measureScale is dnsbench -scale: kdnsd alone, fed by the API server at
// -services and -headless (100k headless services make the API server
// allocate no ClusterIPs, whose repair loop slowed creation through it
// to ~24 a second by 38k ClusterIP services): the time from the replicas'
// start to the whole set answered, each replica's memory once settled,
// and a new leader's resync after the leader is killed.
func measureScale(c config) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "kdnsd-scalebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	services, slices := dataset(c.services, c.headless)
	env, _, took, err := startAPI(ctx, c.load, services, slices)
	if err != nil {
		return err
	}
	defer env.Stop()
	fmt.Printf("%d services (%d headless) and %d slices of 3 endpoints created (%s) in %v\n",
		len(services), c.headless, len(slices), loadedHow(c.load), took.Round(time.Second))

	began := time.Now()
	var kdnsdEnv []string
	if c.memLimit != "" {
		kdnsdEnv = []string{"GOMEMLIMIT=" + c.memLimit}
		fmt.Printf("replicas run with GOMEMLIMIT=%s\n", c.memLimit)
	}
	s, cl, err := startKdnsd(c.kdnsd, env.KdnsdKubeconfig, dir, c.replicas, kdnsdEnv...)
	if err != nil {
		return err
	}
	defer s.stop()
	var addrs []string
	for _, r := range cl.Replicas {
		addrs = append(addrs, r.DNSAddr)
	}
	last, lastSlice := services[len(services)-1], slices[len(slices)-1]
	startup, err := slowestAnswer(addrs, fqdn(last), expectedA(last, lastSlice).String(), began, startTimeout)
	if err != nil {
		return err
	}
	fmt.Printf("start of %d replicas → the last service answered by all: %v\n", len(addrs), startup.Round(time.Millisecond))
	// The last service answered is not the last committed: the leader
	// works through its queue in no particular order.
	streaming := func() bool {
		l := cl.Leader(ctx)
		if l == nil {
			return false
		}
		st, err := l.Status(ctx)
		return err == nil && strings.HasPrefix(st.Watcher, "streaming")
	}
	if !wait.Poll(startTimeout, streaming) {
		return fmt.Errorf("the leader's watcher did not stream within %v", startTimeout)
	}
	fmt.Printf("start → the leader's watcher streams (its first diff committed): %v\n", time.Since(began).Round(time.Millisecond))
	if err := printMemory(ctx, cl); err != nil {
		return err
	}
	rs, err := measureResync(ctx, cl, startTimeout)
	if err != nil {
		return err
	}
	fmt.Printf("leader killed (SIGKILL): a new leader %v later; its resync done %v after the kill; %d log entries appended; last applied command at index %d before, %d after\n",
		rs.elected.Round(time.Millisecond), rs.streamed.Round(time.Millisecond), rs.entries, rs.appliedBefore, rs.appliedAfter)
	// The new leader's informers listed what its View already held: its
	// memory is that of a leader after a failover or a restart.
	fmt.Println("after the resync:")
	return printMemory(ctx, cl)
}

// quietAlloc is what a replica allocates in a second once its work is
// over (kdnsd's quietBelow: it gives a burst's garbage back after one such
// second).
const quietAlloc = 1 << 20

// printMemory prints the memory of each running replica of cl once all have
// been quiet for three seconds in a row (each allocated less than
// quietAlloc a second) and each has collected its garbage since the call:
// what a replica holds once its work is over, not what it has yet to
// collect of its start or a resync (an idle one collects when the Go
// runtime forces it, at the latest 2 minutes after its last collection).
func printMemory(ctx context.Context, cl *cluster.Cluster) error {
	var running []*cluster.Replica
	for _, r := range cl.Replicas {
		if r.Running() {
			running = append(running, r)
		}
	}
	since := float64(time.Now().UnixNano()) / 1e9
	allocated := make([]float64, len(running))
	quietSeconds := 0
	settled := func() (bool, error) {
		quiet, collected := true, true
		for i, r := range running {
			a, err := metric(r.HTTPAddr, "go_memstats_alloc_bytes_total")
			if err != nil {
				return false, nil
			}
			quiet = quiet && allocated[i] > 0 && a-allocated[i] < quietAlloc
			allocated[i] = a
			if at, err := metric(r.HTTPAddr, "go_memstats_last_gc_time_seconds"); err != nil || at < since {
				collected = false
			}
		}
		if quiet {
			quietSeconds++
		} else {
			quietSeconds = 0
		}
		return quietSeconds >= 3 && collected, nil
	}
	// A scrape allocates: asked every few milliseconds, the replicas would
	// never be quiet, and would collect the scrapes' garbage, not their own.
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := wait.UntilEvery(waitCtx, time.Second, "the replicas to be quiet and to have collected their garbage", settled); err != nil {
		return err
	}
	for _, r := range running {
		st, err := r.Status(ctx)
		if err != nil {
			return err
		}
		live, err := metric(r.HTTPAddr, "go_gc_heap_live_bytes")
		if err != nil {
			return err
		}
		heap, err := heapInuse(r.HTTPAddr)
		if err != nil {
			return err
		}
		pid := r.Pid()
		fmt.Printf("%s (%s): live heap %.1f MiB; RSS %.1f MiB (anonymous %.1f MiB, of which Go heap in use %.1f MiB; file-backed %.1f MiB:%s)\n",
			r.ID, st.State, mb(int64(live)), kbMB(vmRSS(pid)), kbMB(procStatusKB(pid, "RssAnon")), mb(heap), kbMB(procStatusKB(pid, "RssFile")), residentByFile(pid))
	}
	return nil
}

// residentByFile lists a process's file-backed RSS by file, largest
// first.
func residentByFile(pid int) string {
	resident, err := boltmaptest.ResidentByFile(strconv.Itoa(pid))
	if err != nil {
		return " " + err.Error()
	}
	files := slices.SortedFunc(maps.Keys(resident), func(a, b string) int { return cmp.Compare(resident[b], resident[a]) })
	var b strings.Builder
	for _, f := range files {
		if resident[f] > 0 {
			fmt.Fprintf(&b, " %s %.1f MiB", filepath.Base(f), mb(resident[f]))
		}
	}
	return b.String()
}
