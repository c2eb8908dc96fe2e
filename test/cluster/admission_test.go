package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestWipedVoterCannotElectLaggingLeader is the data-loss scenario of a
// wiped volume: voters A (leader), B, C. B is down while A and C commit
// changes; then C's volume is wiped and C restarts empty, and A stops before
// anything reconciles C. B comes back behind. Had the empty C voted, B would
// have won an election without the committed changes and they would be gone
// for good (the API server is unreachable from here on, so no leader can
// re-read them). Instead C refuses, no leader is elected until A returns,
// nothing committed is lost, and C becomes a voter again once caught up.
func TestWipedVoterCannotElectLaggingLeader(t *testing.T) {
	c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	cs := admin(t)
	ns := namespace(t, cs)
	first := serviceOnAll(t, c, cs, ns, "first")
	a := waitLeader(t, c)
	var b, cc *Replica
	for _, r := range c.Replicas {
		switch {
		case r == a:
		case b == nil:
			b = r
		default:
			cc = r
		}
	}

	b.Kill()
	committed := map[string]string{}
	for i := range 3 {
		name := fmt.Sprintf("while-b-is-down-%d", i)
		committed[name] = createService(t, cs, ns, name).String()
	}
	for name, ip := range committed {
		wait.For(t, cc.ID+" to apply "+name, 20*time.Second, func() bool { return answersA(cc, fqdn(name, ns), ip) })
	}

	// From here on no replica can reach the API server.
	unreachable := filepath.Join(t.TempDir(), "unreachable.kubeconfig")
	if err := WriteUnreachableKubeconfig(unreachable); err != nil {
		t.Fatal(err)
	}
	c.Kubeconfig = unreachable
	cc.Kill()
	if err := os.RemoveAll(cc.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := cc.Start(); err != nil {
		t.Fatal(err)
	}
	if st := status(t, cc); st.Admission != "blank" {
		t.Fatalf("wiped %s reports admission %q, want blank", cc.ID, st.Admission)
	}
	a.Kill()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	status(t, b)
	if wait.Poll(5*time.Second, func() bool { return c.Leader(context.Background()) != nil }) {
		t.Fatalf("a leader was elected without %s, which holds the committed changes", a.ID)
	}
	// The check above means something only if the lagging replica asked
	// (on a slow machine it may take longer to); and still no leader then.
	wait.For(t, b.ID+" to ask the wiped "+cc.ID+" for a vote", 20*time.Second, func() bool {
		return rejectedRPCs(t, cc, "not_admitted") > 0
	})
	if leader := c.Leader(context.Background()); leader != nil {
		t.Fatalf("%s was elected without %s, which holds the committed changes", leader.ID, a.ID)
	}

	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Replicas {
		for name, ip := range committed {
			wait.For(t, r.ID+" to answer "+name, 30*time.Second, func() bool { return answersA(r, fqdn(name, ns), ip) })
		}
		if !answersA(r, fqdn("first", ns), first) {
			t.Errorf("%s lost %s", r.ID, "first")
		}
	}
	wait.For(t, cc.ID+" to be admitted as a voter again", 30*time.Second, func() bool {
		st, err := cc.Status(context.Background())
		if err != nil || st.Admission != "admitted" {
			return false
		}
		for _, s := range st.Servers {
			if s.ID == cc.ID {
				return s.Voter
			}
		}
		return false
	})
	// Every replica serves the same records, at the same index.
	wait.For(t, "every replica at the same served index", 20*time.Second, func() bool {
		var idx []uint64
		for _, r := range c.Replicas {
			st, err := r.Status(context.Background())
			if err != nil {
				return false
			}
			idx = append(idx, st.ServedIndex)
		}
		return idx[0] == idx[1] && idx[1] == idx[2]
	})
}
