package membership

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/wait"
)

// voters3 is the configuration of a fresh three-replica cluster.
func (c *cluster) voters3() []string {
	return c.want("kdnsd-0@"+ipOf(0), "kdnsd-1@"+ipOf(1), "kdnsd-2@"+ipOf(2))
}

// startThree creates the StatefulSet and pods kdnsd-0…2 and starts their
// replicas, which bootstrap from discovery.
func (c *cluster) startThree() []*peer {
	c.t.Helper()
	c.createStatefulSet(3)
	var peers []*peer
	for i := range 3 {
		name := "kdnsd-" + string(rune('0'+i))
		c.createPod(name, ipOf(i), true)
		peers = append(peers, c.start(name, ipOf(i), "", true))
	}
	for _, p := range peers {
		p.bootstrapped(20 * time.Second)
	}
	c.waitConfig(10*time.Second, c.voters3())
	return peers
}

// TestBootstrapFromDiscovery bootstraps three replicas that find each other
// through the API server and ask each other over HTTP /status whether they
// have state: nothing happens until all three pods have IPs and answer.
func TestBootstrapFromDiscovery(t *testing.T) {
	c := newCluster(t, true)
	c.createStatefulSet(3)
	c.createPod("kdnsd-0", ipOf(0), true)
	c.createPod("kdnsd-1", ipOf(1), true)
	c.createPod("kdnsd-2", "", true)
	p0 := c.start("kdnsd-0", ipOf(0), "", true)
	p1 := c.start("kdnsd-1", ipOf(1), "", true)
	for _, p := range []*peer{p0, p1} {
		wait.For(t, p.name+" to wait for kdnsd-2's IP", 10*time.Second, func() bool {
			return p.mem.waitingReason() == "waiting for pod kdnsd-2 to have an IP"
		})
	}
	// kdnsd-2 has an IP before its process serves /status: the others
	// cannot tell whether it has state, so they still wait.
	c.setPodIP("kdnsd-2", ipOf(2))
	for _, p := range []*peer{p0, p1} {
		wait.For(t, p.name+" to probe kdnsd-2", 10*time.Second, func() bool {
			return strings.HasPrefix(p.mem.waitingReason(), "cannot tell whether pod kdnsd-2 has raft state")
		})
	}
	if p0.node.HasState() || p1.node.HasState() {
		t.Fatal("bootstrapped before kdnsd-2 answered")
	}
	p2 := c.start("kdnsd-2", ipOf(2), "", true)
	for _, p := range []*peer{p0, p1, p2} {
		p.bootstrapped(20 * time.Second)
	}
	c.waitConfig(10*time.Second, c.voters3())
	c.commit("web")
	c.waitApplied("web")
	if n := p0.counted.bootstraps.Load() + p1.counted.bootstraps.Load() + p2.counted.bootstraps.Load(); n == 0 {
		t.Error("no replica bootstrapped")
	}
	if addr, ok := p0.mem.Addr("kdnsd-2"); !ok || addr != c.addr(ipOf(2)) {
		t.Errorf("Addr(kdnsd-2) = %q, %v", addr, ok)
	}
	if addr, ok := p0.mem.Addr("kdnsd-9"); ok {
		t.Errorf("Addr(kdnsd-9) = %q, want none", addr)
	}
}

// TestEmptyReplicaIsAddedNotBootstrapped restarts a replica with its volume
// lost while the others have a cluster: it must not bootstrap a second one,
// and gets the state from the leader.
func TestEmptyReplicaIsAddedNotBootstrapped(t *testing.T) {
	c := newCluster(t, true)
	c.startThree()
	c.commit("before")
	c.waitApplied("before")
	stopWatch := c.quorumWatch("kdnsd-0", "kdnsd-1", "kdnsd-2")
	c.stop("kdnsd-0")

	// What kdnsd-0 decides without state while the others have it, before
	// the leader can reach it.
	m, err := New(Config{
		Client: c.kdnsd, Namespace: c.ns, Selector: selector, StatefulSet: stsName,
		RaftPort: c.raftPort, StatusPort: c.statusPort, Self: "kdnsd-0", Voter: true,
		Logger: c.logs.logger("probe-only"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if peers, reason := m.bootstrapPeers(ctx); peers != nil || !strings.Contains(reason, "already belongs to a raft cluster") {
		t.Fatalf("without state among peers with state: bootstrap %v (%q)", peers, reason)
	}

	p0 := c.start("kdnsd-0", ipOf(0), "", true) // a new, empty volume
	p0.bootstrapped(20 * time.Second)
	if n := p0.counted.bootstraps.Load(); n != 0 {
		t.Errorf("the replica with a lost volume bootstrapped %d times", n)
	}
	wait.For(t, "kdnsd-0 to receive the state", 10*time.Second, func() bool { return p0.has("before") })
	c.commit("after")
	c.waitApplied("after")
	c.waitConfig(5*time.Second, c.voters3())
	stopWatch()
}

// TestScaleUpAndDown scales the StatefulSet 3 → 5 → 3: the new replicas
// join as voters without bootstrapping, and the removed ones leave, without
// the running replicas ever losing their majority.
func TestScaleUpAndDown(t *testing.T) {
	c := newCluster(t, false)
	c.startThree()
	stopWatch := c.quorumWatch("kdnsd-0", "kdnsd-1", "kdnsd-2")

	c.scale(5)
	c.createPod("kdnsd-3", ipOf(3), true)
	c.createPod("kdnsd-4", ipOf(4), true)
	p3 := c.start("kdnsd-3", ipOf(3), "", true)
	p4 := c.start("kdnsd-4", ipOf(4), "", true)
	five := c.want("kdnsd-0@"+ipOf(0), "kdnsd-1@"+ipOf(1), "kdnsd-2@"+ipOf(2), "kdnsd-3@"+ipOf(3), "kdnsd-4@"+ipOf(4))
	c.waitConfig(20*time.Second, five)
	for _, p := range []*peer{p3, p4} {
		p.bootstrapped(5 * time.Second)
		if n := p.counted.bootstraps.Load(); n != 0 {
			t.Errorf("%s bootstrapped %d times", p.name, n)
		}
	}
	c.commit("five")
	c.waitApplied("five")

	// Let kdnsd-4, which is about to go, lead: it must not remove itself,
	// and the replica it hands over to on shutdown removes it.
	if lead := c.leader(); lead.name != "kdnsd-4" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := lead.node.TransferLeadership(ctx, "kdnsd-4")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, "kdnsd-4 to lead", 10*time.Second, p4.node.IsLeader)

	// As the StatefulSet controller does: the highest ordinal first, each
	// pod gone before the next goes.
	c.scale(3)
	rounds := p4.counted.reads.Load()
	wait.For(t, "five more reconcile rounds on kdnsd-4", 10*time.Second, func() bool { return p4.counted.reads.Load() >= rounds+5 })
	if !p4.node.IsLeader() {
		t.Fatal("kdnsd-4 lost leadership")
	}
	c.waitConfig(time.Second, five)
	c.stop("kdnsd-4")
	c.deletePod("kdnsd-4")
	c.waitConfig(20*time.Second, five[:4])
	c.stop("kdnsd-3")
	c.deletePod("kdnsd-3")
	c.waitConfig(20*time.Second, c.voters3())
	c.commit("three")
	c.waitApplied("three")
	stopWatch()
}

// TestRescheduledPodRejoinsWithNewIP reschedules kdnsd-1: a new pod with
// the same name, a new IP and the same volume. It rejoins and the leader
// updates its address.
func TestRescheduledPodRejoinsWithNewIP(t *testing.T) {
	c := newCluster(t, false)
	c.startThree()
	c.commit("before")
	c.waitApplied("before")
	stopWatch := c.quorumWatch("kdnsd-0", "kdnsd-1", "kdnsd-2")

	dir := c.peer("kdnsd-1").dir
	c.stop("kdnsd-1")
	c.deletePod("kdnsd-1")
	const newIP = "127.0.0.21"
	c.createPod("kdnsd-1", newIP, true)
	p1 := c.start("kdnsd-1", newIP, dir, true)
	c.waitConfig(20*time.Second, c.want("kdnsd-0@"+ipOf(0), "kdnsd-1@"+newIP, "kdnsd-2@"+ipOf(2)))
	p1.bootstrapped(5 * time.Second)
	if n := p1.counted.bootstraps.Load(); n != 0 {
		t.Errorf("kdnsd-1 bootstrapped %d times", n)
	}
	c.commit("after")
	c.waitApplied("after")
	for _, name := range []string{"kdnsd-0", "kdnsd-2"} {
		if addr, ok := c.peer(name).mem.Addr("kdnsd-1"); !ok || addr != c.addr(newIP) {
			t.Errorf("%s: Addr(kdnsd-1) = %q, %v", name, addr, ok)
		}
	}
	stopWatch()
}

// TestReadReplica runs a non-voting replica (label kdnsd.io/voter=false)
// from the start: it is not counted for bootstrap, is added as a non-voter
// and stays one, and is removed DeadServerTimeout after its pod is gone.
func TestReadReplica(t *testing.T) {
	c := newCluster(t, false)
	c.deadTimeout = time.Second
	c.createStatefulSet(3)
	const replica, replicaIP = "kdnsd-replica-0", "127.0.0.31"
	c.createPod(replica, replicaIP, false)
	r := c.start(replica, replicaIP, "", false)
	var peers []*peer
	for i := range 3 {
		name := "kdnsd-" + string(rune('0'+i))
		c.createPod(name, ipOf(i), true)
		peers = append(peers, c.start(name, ipOf(i), "", true))
	}
	for _, p := range append(peers, r) {
		p.bootstrapped(20 * time.Second)
	}
	withReplica := c.want("kdnsd-0@"+ipOf(0), "kdnsd-1@"+ipOf(1), "kdnsd-2@"+ipOf(2), replica+"@"+replicaIP+"/nonvoter")
	c.waitConfig(20*time.Second, withReplica)
	if n := r.counted.bootstraps.Load(); n != 0 {
		t.Errorf("the read replica bootstrapped %d times", n)
	}
	c.commit("read")
	c.waitApplied("read")

	// It has state and answers: several more rounds must leave it a
	// non-voter.
	leader := c.leader()
	rounds := leader.counted.reads.Load()
	wait.For(t, "five more reconcile rounds", 10*time.Second, func() bool { return leader.counted.reads.Load() >= rounds+5 })
	c.waitConfig(time.Second, withReplica)

	c.stop(replica)
	c.deletePod(replica)
	c.waitConfig(20*time.Second, c.voters3())
}
