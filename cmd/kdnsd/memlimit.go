package main

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"slices"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryLimitRatio is the share of the container's memory limit the Go heap
// may grow to before the collector works harder: the rest is headroom for
// what the runtime does not count (stacks, bbolt's mmap, the OS) before the
// kernel's OOM killer would act.
const memoryLimitRatio = 0.9

// limitMemory sets the Go runtime's soft memory limit (GOMEMLIMIT) from the
// memory limit of the cgroup kdnsd runs in, so a replica near its
// container's limit collects garbage sooner instead of being OOM-killed.
// GOMEMLIMIT, or AUTOMEMLIMIT=off, in the environment keeps the operator's
// choice. Outside a cgroup or without a limit it does nothing.
func limitMemory(log *slog.Logger) {
	limit, err := memlimit.SetGoMemLimitWithOpts(
		memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case err != nil && !errors.Is(err, memlimit.ErrNoCgroup):
		log.Warn("cannot derive the Go memory limit from the container's; the runtime's default stays", "err", err)
	case limit > 0:
		log.Info("Go memory limit set from the container's memory limit", "gomemlimit_bytes", limit, "ratio", memoryLimitRatio)
	}
}

// loadGCPercent is the collector's target (GOGC) while a replica reads its
// store and indexes it at start. That burst allocates several times what it
// keeps, in step with a live heap that only grows, so at the default target
// of 100 the collector marks the growing heap again and again: about a fifth
// of a restart's CPU at 100k services. The soft memory limit (limitMemory)
// still bounds the heap, so a replica in a container stays inside its limit.
const loadGCPercent = 400

// collectLessWhileLoading sets GOGC to loadGCPercent, unless the operator's
// GOGC is higher or off, and returns the function that ends the load: it
// restores the operator's GOGC and, on a goroutine of its own, collects and
// returns the load's garbage to the OS at once, instead of over the minutes
// the runtime's scavenger would take.
func collectLessWhileLoading() (loaded func()) {
	prev := debug.SetGCPercent(loadGCPercent)
	if prev < 0 || prev >= loadGCPercent {
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() {
		debug.SetGCPercent(prev)
		go debug.FreeOSMemory()
	}
}

// A burst of work (a first sync, a new leader's lists and resync, a large
// rollout, a Raft snapshot) allocates many times what it keeps: objects
// listed, log entries decoded, the index's shards copied, a snapshot
// encoded. The collector lets the heap grow to twice what is live
// (GOGC=100) and the runtime's scavenger returns only what lies beyond that
// goal, so a replica keeps its last burst's garbage while it goes on
// answering: one grown through the API to 100k ClusterIP services held
// 355–415 MB of RSS for a live heap of 144–157 MB (BENCHMARKS.md).
const (
	// releaseCheck is how often the heap is looked at.
	releaseCheck = time.Second
	// quietBelow is what a replica allocates in releaseCheck once a burst is
	// over: scrapes, Raft's heartbeats, a few hundred forwarded queries.
	// A replica allocating more is at work, and the collector's own pace
	// stands; one allocating less needs 16 checks to pile up releaseAbove
	// again, which bounds the forced collections to four a minute.
	quietBelow = 1 << 20
	// releaseAbove is how much heap held beyond the live heap (and the
	// releaser's floor) is worth a forced collection: 300 ms of one core's
	// time at 100k services, once per burst, against keeping the memory. A
	// new leader at 100k services kept 24-30 MiB of its resync's garbage
	// beyond the floor, under the 32 MiB this was (RSS 233-244 MiB, against
	// 211 MiB with 16; BENCHMARKS.md).
	releaseAbove = 16 << 20
)

// heapSamples are the runtime/metrics that tell how much of the heap a
// collection and a scavenge could give back, and how much was allocated.
var heapSamples = []runtimemetrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
	{Name: "/gc/heap/live:bytes"},
	{Name: "/gc/heap/allocs:bytes"},
}

// heapNow is what heapSamples read.
type heapNow struct {
	// garbage is the heap the runtime holds from the OS beyond what its
	// last collection found live.
	garbage, live uint64
	// allocated counts every byte allocated since the process started.
	allocated uint64
}

// readHeap reads heapSamples.
func readHeap() heapNow {
	s := slices.Clone(heapSamples)
	runtimemetrics.Read(s)
	held := s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
	live := s[3].Value.Uint64()
	return heapNow{garbage: held - min(held, live), live: live, allocated: s[4].Value.Uint64()}
}

// releaser decides when a burst's garbage is given back.
type releaser struct {
	quiet, above uint64
	last         heapNow
	// floor is what the heap held beyond the live heap right after the
	// last release: what a collection cannot give back, the holes that
	// live objects leave in the heap's spans (65-80 MB at 100k services
	// grown through the API). Only garbage above it counts, or a replica
	// would collect again every check, for nothing. It falls when a look
	// finds less: new objects filled the holes.
	floor uint64
}

// due takes the heap as it is now and reports whether to release: less
// than quiet was allocated since the last look, and the heap holds more
// than above beyond the live heap and the floor.
func (r *releaser) due(now heapNow) bool {
	busy := now.allocated-r.last.allocated >= r.quiet
	r.last, r.floor = now, min(r.floor, now.garbage)
	return !busy && now.garbage >= r.floor+r.above
}

// released takes the heap as a release left it.
func (r *releaser) released(after heapNow) {
	r.last, r.floor = after, after.garbage
}

// releaseAfterBursts looks at the heap every period until ctx ends, and
// collects and returns its garbage to the OS when a burst of work is over
// and left more than above of it (releaser.due); then it calls also, which
// gives back what else the burst left in RSS (the Raft log file's mapped
// pages).
func releaseAfterBursts(ctx context.Context, every time.Duration, quiet, above uint64, also func(), log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	r := &releaser{quiet: quiet, above: above, last: readHeap()}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := readHeap()
		if !r.due(now) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		also()
		r.released(readHeap())
		log.Info("returned the garbage of a burst of work to the OS", "garbage_bytes", now.garbage,
			"left_bytes", r.floor, "live_bytes", r.last.live, "took", time.Since(start).Round(time.Millisecond))
	}
}
