package cluster

import (
	"math"
	"slices"
	"time"
)

// Percentile is the nearest-rank p-th percentile of ds (0 for none); ds
// is left as it is.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
