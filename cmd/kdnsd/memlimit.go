package main

import (
	"errors"
	"log/slog"
	"runtime/debug"

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
