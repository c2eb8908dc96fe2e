package cluster

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// configuration returns "id@address" of every voter in r's Raft
// configuration, sorted.
func configuration(r *Replica) []string {
	st, err := r.Status(context.Background())
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range st.Servers {
		if s.Voter {
			out = append(out, s.ID+"@"+s.Address)
		}
	}
	slices.Sort(out)
	return out
}

func voters(rs ...*Replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID+"@"+r.RaftAddr)
	}
	slices.Sort(out)
	return out
}

// newDiscoveredCluster starts n replicas that find each other through the
// API as the pods of a StatefulSet; prepare, if given, adjusts the cluster
// before they start.
func newDiscoveredCluster(t *testing.T, n int, prepare ...func(*Cluster)) (*Cluster, *StatefulSet) {
	t.Helper()
	cs := admin(t)
	sts := NewStatefulSet(t, cs, namespace(t, cs), int32(n))
	c, err := NewOnHosts(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	c.Namespace = sts.Namespace
	for _, p := range prepare {
		p(c)
	}
	stopOnCleanup(t, c)
	for _, r := range c.Replicas {
		sts.RunPod(r)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	want := voters(c.Replicas...)
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to bootstrap the discovered configuration", 30*time.Second, func() bool {
			return slices.Equal(configuration(r), want)
		})
	}
	return c, sts
}

// TestDiscoveryBootstrapAndScale: three replicas bootstrap from the pods of
// their StatefulSet; scaling to five adds two voters and back to three removes
// them, while records keep changing and none is lost.
func TestDiscoveryBootstrapAndScale(t *testing.T) {
	c, sts := newDiscoveredCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	ips := map[string]string{"s0": createService(t, cs, ns, "s0").String()}

	sts.Scale(5)
	for _, host := range []string{"127.0.0.14", "127.0.0.15"} {
		if err := c.AddOnHost(host); err != nil {
			t.Fatal(err)
		}
		r := c.Replicas[len(c.Replicas)-1]
		sts.RunPod(r)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ips["s1"] = createService(t, cs, ns, "s1").String()
	want := voters(c.Replicas...)
	wait.For(t, "five voters", 30*time.Second, func() bool { return slices.Equal(configuration(c.Replicas[0]), want) })
	ips["s2"] = createService(t, cs, ns, "s2").String()

	sts.Scale(3)
	for _, r := range []*Replica{c.Replicas[4], c.Replicas[3]} {
		r.Stop()
		sts.DeletePod(r)
	}
	ips["s3"] = createService(t, cs, ns, "s3").String()
	want = voters(c.Replicas[:3]...)
	wait.For(t, "three voters again", 30*time.Second, func() bool {
		leader := c.Leader(context.Background())
		return leader != nil && slices.Equal(configuration(leader), want)
	})
	for _, r := range c.Replicas[:3] {
		for name, ip := range ips {
			wait.For(t, r.ID+" to answer "+name, 10*time.Second, func() bool { return answersA(r, fqdn(name, ns), ip) })
		}
	}
}

// TestRescheduledAndEmptyReplicasRejoin: a replica that comes back on a new
// IP with its data has its address updated; one that comes back with an
// empty data dir rejoins and receives the records.
func TestRescheduledAndEmptyReplicasRejoin(t *testing.T) {
	c, sts := newDiscoveredCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	ip := createService(t, cs, ns, "before").String()

	moved := c.Replicas[1]
	moved.Stop()
	sts.DeletePod(moved)
	moved.Move("127.0.0.21")
	sts.RunPod(moved)
	if err := moved.Start(); err != nil {
		t.Fatal(err)
	}
	want := voters(c.Replicas...)
	wait.For(t, "the moved replica's new address in the configuration", 30*time.Second, func() bool {
		leader := c.Leader(context.Background())
		return leader != nil && slices.Equal(configuration(leader), want)
	})
	after := createService(t, cs, ns, "after-move").String()
	wait.For(t, "the moved replica to answer", 20*time.Second, func() bool { return answersA(moved, fqdn("after-move", ns), after) })

	wiped := c.Replicas[2]
	wiped.Stop()
	if err := os.RemoveAll(wiped.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := wiped.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the wiped replica to receive the records", 30*time.Second, func() bool {
		return answersA(wiped, fqdn("before", ns), ip) && answersA(wiped, fqdn("after-move", ns), after)
	})
	// It rejoined the one cluster: it reports the same configuration as the
	// leader, not one of its own.
	wait.For(t, "the wiped replica to know the cluster", 20*time.Second, func() bool {
		return slices.Equal(configuration(wiped), want)
	})
	// Nor did it ever start one.
	log := wiped.LogTail(400)
	sinceRestart := log[strings.LastIndex(log, "=== "):]
	if strings.Contains(sinceRestart, "bootstrapped a new raft cluster") {
		t.Errorf("the wiped replica's log after restart:\n%s", sinceRestart)
	}
}
