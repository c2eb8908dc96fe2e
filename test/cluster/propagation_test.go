package cluster

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestPropagation measures API write → answered by all three replicas over
// 20 writes. The figures are logged (run with -v); the assertion is loose.
func TestPropagation(t *testing.T) {
	c := newCluster(t, 3)
	waitLeader(t, c)
	cs := admin(t)
	ns := namespace(t, cs)
	var took []time.Duration
	for i := range 20 {
		name := fmt.Sprintf("p%d", i)
		start := time.Now()
		ip := createService(t, cs, ns, name).String()
		var wg sync.WaitGroup
		for _, r := range c.Replicas {
			wg.Go(func() {
				if !wait.Poll(10*time.Second, func() bool { return answersA(r, fqdn(name, ns), ip) }) {
					t.Errorf("%s did not answer %s", r.ID, name)
				}
			})
		}
		wg.Wait()
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	median, maxTook := took[len(took)/2], took[len(took)-1]
	t.Logf("propagation API create → answered by all 3 replicas over %d writes: median %s, max %s",
		len(took), median.Round(100*time.Microsecond), maxTook.Round(100*time.Microsecond))
	if maxTook > 5*time.Second {
		t.Errorf("slowest write took %s", maxTook)
	}
}
