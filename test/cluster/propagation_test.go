package cluster

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestPropagation measures API write → answered by all three replicas over
// 20 writes, with Raft in plaintext and over mutual TLS (with the per-RPC
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

func measurePropagation(t *testing.T, c *Cluster, what string) {
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
				if !wait.Poll(30*time.Second, func() bool { return answersA(r, fqdn(name, ns), ip) }) {
					t.Errorf("%s did not answer %s", r.ID, name)
				}
			})
		}
		wg.Wait()
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	median, maxTook := took[len(took)/2], took[len(took)-1]
	t.Logf("propagation (%s) API create → answered by all 3 replicas over %d writes: median %s, max %s",
		what, len(took), median.Round(100*time.Microsecond), maxTook.Round(100*time.Microsecond))
}
