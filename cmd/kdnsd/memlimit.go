package main

import (
	"errors"
	"log/slog"

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
