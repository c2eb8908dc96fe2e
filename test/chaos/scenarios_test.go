package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/wait"
)

// Phases of every scenario. warmUp and settle are stretches of steady
// workload recorded before the fault and after the heal, not waits for a
// condition.
const (
	warmUp = 5 * time.Second
	settle = 10 * time.Second
	// rejoinTimeout bounds the wait for a restarted replica's first answer
	// and for a lagging one to catch up; convergeTimeout the wait for every
	// replica to match the API after the writes stop.
	rejoinTimeout   = 60 * time.Second
	convergeTimeout = 60 * time.Second
)

// bounds are what the time-bound properties are held to. Staleness and the
// write after a fault both include a failover (elections of 0.5 s
// timeouts) and the new leader's first list of the API.
var bounds = Bounds{Staleness: 10 * time.Second, Failover: 10 * time.Second, Marker: 30 * time.Second}

// scenario is one fault. inject applies it and returns what heals it;
// hold is how long the fault lasts before the heal.
type scenario struct {
	name   string
	about  string
	short  bool // in the short profile (CI)
	hold   func(short bool) time.Duration
	inject func(d *driver) (heal func())
	layout layout
}

// layout is what a scenario needs of its cluster beyond the voters; only
// the local site lays out more (the node runs the scenarios that need
// nothing more).
type layout struct {
	// grow is how many replicas beyond the voters are laid out for the
	// scenario to start itself. Such a cluster runs with Kubernetes
	// discovery, as the pods of a StatefulSet the suite plays, so that it
	// is scaled as an operator scales it.
	grow int
	// disks puts every replica's data dir on a loop device of its own,
	// which the scenario can throttle (disks_test.go).
	disks bool
}

func holdFor(full, short time.Duration) func(bool) time.Duration {
	return func(s bool) time.Duration {
		if s {
			return short
		}
		return full
	}
}

var scenarios = []scenario{
	{"kill-leader", "kill -9 of the leader; restarted at the heal", true, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() {
			l := d.leaderFaulted()
			d.down(l, "killed")
			d.must(d.site.kill(l))
			return func() { d.restart(l, false) }
		}, layout{}},
	{"kill-follower", "kill -9 of a follower; restarted at the heal", false, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() {
			f := d.follower()
			d.down(f, "killed")
			d.must(d.site.kill(f))
			return func() { d.restart(f, false) }
		}, layout{}},
	{"stop-leader", "SIGSTOP of the leader (10× the election timeout and more), then SIGCONT", true, holdFor(10*time.Second, 5*time.Second),
		func(d *driver) func() {
			l := d.leaderFaulted()
			d.down(l, "stopped")
			d.must(d.site.pause(l))
			return func() {
				since := time.Now()
				d.must(d.site.resume(l))
				d.rejoin(l, false, since)
			}
		}, layout{}},
	{"partition-leader", "the leader cut off from the majority both ways (iptables in its namespace), then healed", true, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() { return d.partition(d.leaderFaulted(), true) }, layout{}},
	{"partition-follower", "one follower cut off both ways, then healed", false, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() { return d.partition(d.follower(), true) }, layout{}},
	{"oneway-leader", "one-way partition: the leader can send to the others, not receive from them", true, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() { return d.partition(d.leaderFaulted(), false) }, layout{}},
	{"api-down", "the API server stopped for 60 s (20 s when run under the short profile)", false, holdFor(60*time.Second, 20*time.Second),
		func(d *driver) func() {
			d.expect(d.c.Replicas...)
			d.stopAPIServer()
			return d.startAPIServer
		}, layout{}},
	{"restart-all-api-down", "the API server stopped, every replica killed and restarted while it is down, the API server back after 30 s (20 s short)", true, holdFor(30*time.Second, 20*time.Second),
		func(d *driver) func() {
			d.leaderFaulted()
			d.expect(d.c.Replicas...)
			d.stopAPIServer()
			// The replicas are hit now: stopping the node's kube-apiserver
			// (a graceful shutdown) takes seconds.
			d.h.Fault = time.Now()
			for _, r := range d.c.Replicas {
				d.down(r, "restarted")
				d.must(d.site.kill(r))
			}
			since := map[*cluster.Replica]time.Time{}
			for _, r := range d.c.Replicas {
				since[r] = d.start(r)
			}
			for _, r := range d.c.Replicas {
				d.back(r, false, since[r])
			}
			return d.startAPIServer
		}, layout{}},
	{"wipe-follower", "a follower killed and its data directory wiped; restarted at the heal, empty", false, holdFor(10*time.Second, 10*time.Second),
		func(d *driver) func() {
			f := d.follower()
			d.down(f, WhyWiped)
			d.must(d.site.wipe(f))
			return func() { d.restart(f, true) }
		}, layout{}},
	{"rolling-restart", "every replica stopped with SIGTERM and restarted in turn, followers first, each once the previous caught up", false, holdFor(0, 0),
		func(d *driver) func() {
			l := d.leader()
			order := slices.DeleteFunc(slices.Clone(d.c.Replicas), func(r *cluster.Replica) bool { return r == l })
			d.expect(d.c.Replicas...)
			// The roll is the fault and takes minutes on the node (the
			// kubelet backs off restarting a pod's container): the write
			// made after it is timed from itself.
			d.markerTimedFromWrite = true
			for _, r := range append(order, l) {
				d.down(r, "rolled")
				d.must(d.site.stop(r))
				d.restart(r, false)
			}
			return func() {}
		}, layout{}},
	{"scale", fmt.Sprintf("the StatefulSet scaled by %d voters and back under load (replicas run with Kubernetes discovery; the new ones start empty and the leader admits them, then they are stopped and their pods deleted, highest ordinal first)", scaleBy), false, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() {
			d.grow()
			return d.shrink
		}, layout{grow: scaleBy}},
	{"slow-disk-leader", fmt.Sprintf("the leader's disk throttled to %d write requests a second (its data dir on a loop device of its own, its process in a blkio cgroup), then unthrottled", slowIOPS), false, holdFor(15*time.Second, 10*time.Second),
		func(d *driver) func() {
			l := d.leader()
			i := slices.Index(d.c.Replicas, l)
			d.faulted = append(d.faulted, l)
			d.expect(d.c.Replicas...)
			d.must(d.disks.throttle(i, slowIOPS))
			d.event(fmt.Sprintf("%s (leader) disk throttled to %d writes/s", l.ID, slowIOPS))
			return func() {
				d.must(d.disks.throttle(i, 0))
				d.event(l.ID + " disk unthrottled")
			}
		}, layout{disks: true}},
}

// scaleBy is how many voters the scale scenario adds and removes;
// slowIOPS the write requests a second a slow disk takes.
const (
	scaleBy  = 2
	slowIOPS = 10
)

// driver runs one scenario and records it.
type driver struct {
	t     *testing.T
	site  site
	c     *cluster.Cluster
	h     *History
	w     *writer
	rec   *recorder
	short bool
	// sts is the StatefulSet of a cluster that runs with discovery; disks
	// the replicas' own disks; watch starts reading a replica.
	sts   *cluster.StatefulSet
	disks *disks
	watch func(r *cluster.Replica)

	mu      sync.Mutex // guards h.Down, h.Lagging, h.Events
	faulted []*cluster.Replica
	// markerTimedFromWrite: the marker's clock starts when the API took
	// its write, not at the fault (set by a fault that ends long after it
	// begins, before the marker is written).
	markerTimedFromWrite bool
}

func (d *driver) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

func (d *driver) event(what string) { d.eventAt(time.Now(), what) }

func (d *driver) eventAt(t time.Time, what string) {
	d.mu.Lock()
	d.h.Events = append(d.h.Events, Event{At: t, What: what})
	d.mu.Unlock()
}

// leader returns the current leader and its term.
func (d *driver) leader() *cluster.Replica {
	var l *cluster.Replica
	wait.For(d.t, "a leader", 30*time.Second, func() bool {
		// A stopped replica never answers: bound each round.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l = leaderOf(ctx, d.c.Replicas)
		return l != nil
	})
	return l
}

// leaderFaulted returns the leader and records that the fault hits it;
// the other replicas must answer the write after the fault.
func (d *driver) leaderFaulted() *cluster.Replica {
	l := d.leader()
	st, err := l.Status(context.Background())
	d.must(err)
	d.h.LeaderFaulted, d.h.FaultedLeaderTerm = true, st.Term
	d.faulted = append(d.faulted, l)
	d.expectAllBut(l)
	d.event(l.ID + " (leader, term " + fmt.Sprint(st.Term) + ") faulted")
	return l
}

// follower returns a replica that does not lead, recorded as faulted.
func (d *driver) follower() *cluster.Replica {
	l := d.leader()
	for _, r := range d.c.Replicas {
		if r != l {
			d.faulted = append(d.faulted, r)
			d.expectAllBut(r)
			d.event(r.ID + " (follower) faulted")
			return r
		}
	}
	d.t.Fatal("no follower")
	return nil
}

func (d *driver) expectAllBut(x *cluster.Replica) {
	var rs []*cluster.Replica
	for _, r := range d.c.Replicas {
		if r != x {
			rs = append(rs, r)
		}
	}
	d.expect(rs...)
}

func (d *driver) expect(rs ...*cluster.Replica) {
	d.h.MarkerExpected = nil
	for _, r := range rs {
		d.h.MarkerExpected = append(d.h.MarkerExpected, r.ID)
	}
}

// down opens an interval in which r is not expected to answer.
func (d *driver) down(r *cluster.Replica, why string) {
	d.mu.Lock()
	d.h.Down = append(d.h.Down, Interval{Replica: r.ID, From: time.Now(), Why: why})
	d.mu.Unlock()
	d.event(r.ID + " " + why)
}

// closeOpen closes r's open interval in ivs at t.
func (d *driver) closeOpen(ivs []Interval, r *cluster.Replica, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range ivs {
		if ivs[i].Replica == r.ID && ivs[i].To.IsZero() {
			ivs[i].To = t
		}
	}
}

// restart starts r again and waits for it to rejoin.
func (d *driver) restart(r *cluster.Replica, wiped bool) {
	d.rejoin(r, wiped, d.start(r))
}

// start runs r again (or waits for the kubelet to have) and returns when
// its process started.
func (d *driver) start(r *cluster.Replica) time.Time {
	since, err := d.site.start(r)
	d.must(err)
	d.eventAt(since, r.ID+" started")
	return since
}

// rejoin waits for r, started or continued at since, to answer again and
// then to catch up: it lags from its first answer on.
func (d *driver) rejoin(r *cluster.Replica, wiped bool, since time.Time) {
	at := d.back(r, wiped, since)
	d.catchUp(r, at, at)
}

// back waits for r's first answer since it was started or continued at
// since, which ends its down interval: any answer, or for a wiped replica
// (which answers SERVFAIL until it holds records, by design) the first
// NOERROR or NXDOMAIN. The first such answer may be a reader's: a probe
// sent while r was down can wait out its timeout (ICMP port-unreachable
// replies are rate-limited) after r is back.
func (d *driver) back(r *cluster.Replica, wiped bool, since time.Time) time.Time {
	name := d.w.fqdn("never0")
	backed := func(a Answer) bool { return a.Answered() || !wiped && a.Rcode >= 0 }
	var at time.Time
	wait.For(d.t, r.ID+" to answer again", rejoinTimeout, func() bool {
		a := probe(r, name)
		at = a.At
		return backed(a)
	})
	d.rec.mu.Lock()
	for _, a := range d.rec.answers {
		if a.Replica == r.ID && a.Sent.After(since) && a.At.Before(at) && backed(a) {
			at = a.At
		}
	}
	d.rec.mu.Unlock()
	d.closeOpen(d.h.Down, r, at)
	d.eventAt(at, r.ID+" answers")
	return at
}

// catchUp records r as lagging from `from` until its applied index reaches
// the highest the other replicas had shown by `target` (the moment r
// answered again, or the heal of a partition). Both ends come from the
// recorded answers where they can: this call may come a probe timeout
// after r answered, and the others move on meanwhile.
func (d *driver) catchUp(r *cluster.Replica, from, target time.Time) {
	var goal uint64
	d.rec.mu.Lock()
	for _, a := range d.rec.answers {
		if a.Replica != r.ID && a.Index > 0 && !a.IndexAt.After(target) {
			goal = max(goal, a.Index)
		}
	}
	d.rec.mu.Unlock()
	if goal == 0 {
		for _, o := range d.c.Replicas {
			if o != r {
				if i, ok := appliedIndex(o); ok {
					goal = max(goal, i)
				}
			}
		}
	}
	wait.For(d.t, fmt.Sprintf("%s to catch up to index %d", r.ID, goal), rejoinTimeout, func() bool {
		i, ok := appliedIndex(r)
		return ok && i >= goal
	})
	at := time.Now()
	d.rec.mu.Lock()
	for _, a := range d.rec.answers {
		if a.Replica == r.ID && a.Index >= goal && a.IndexAt.After(from) && a.IndexAt.Before(at) {
			at = a.IndexAt
		}
	}
	d.rec.mu.Unlock()
	d.mu.Lock()
	d.h.Lagging = append(d.h.Lagging, Interval{Replica: r.ID, From: from, To: at, Why: "catching up"})
	d.mu.Unlock()
	d.eventAt(at, fmt.Sprintf("%s caught up to %d", r.ID, goal))
}

// partition cuts r off from the other replicas (both ways, or only what
// comes from them) and returns the heal.
func (d *driver) partition(r *cluster.Replica, both bool) func() {
	peers := slices.DeleteFunc(slices.Clone(d.c.Replicas), func(p *cluster.Replica) bool { return p == r })
	from := time.Now()
	d.must(d.site.cut(r, peers, both))
	d.event(r.ID + " partitioned")
	return func() {
		d.must(d.site.heal(r))
		d.event(r.ID + " healed")
		d.catchUp(r, from, time.Now())
	}
}

// grow scales the StatefulSet up to every replica laid out: each new one
// gets its pod and starts empty, then the leader admits it as a voter.
func (d *driver) grow() {
	all := d.c.Replicas
	d.sts.Scale(int32(len(all)))
	for _, r := range all[*voters:] {
		d.down(r, "added")
		d.sts.RunPod(r)
		since := d.start(r)
		d.watch(r)
		at := d.back(r, true, since)
		d.catchUp(r, at, at)
	}
	d.waitVoters(all)
	d.expect(all...)
}

// shrink scales the StatefulSet back to the voters it started with: the
// others stop and their pods go, highest ordinal first, as the StatefulSet
// controller does; the leader removes them.
func (d *driver) shrink() {
	d.sts.Scale(int32(*voters))
	for i := len(d.c.Replicas) - 1; i >= *voters; i-- {
		r := d.c.Replicas[i]
		d.down(r, "removed")
		d.mu.Lock()
		d.h.Removed = append(d.h.Removed, r.ID)
		d.mu.Unlock()
		d.must(d.site.stop(r))
		d.sts.DeletePod(r)
	}
	d.waitVoters(d.c.Replicas[:*voters])
}

// waitVoters waits until the leader's configuration has exactly rs as
// voters.
func (d *driver) waitVoters(rs []*cluster.Replica) {
	var want []string
	for _, r := range rs {
		want = append(want, r.ID)
	}
	slices.Sort(want)
	wait.For(d.t, fmt.Sprintf("voters %v", want), rejoinTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l := leaderOf(ctx, d.c.Replicas)
		if l == nil {
			return false
		}
		st, err := l.Status(ctx)
		if err != nil {
			return false
		}
		var got []string
		for _, s := range st.Servers {
			if s.Voter {
				got = append(got, s.ID)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
	d.event(fmt.Sprintf("%d voters", len(want)))
}

func (d *driver) stopAPIServer() {
	d.mu.Lock()
	d.h.APIDown = append(d.h.APIDown, Interval{From: time.Now(), Why: "API server stopped"})
	d.mu.Unlock()
	d.must(d.site.stopAPIServer())
	d.event("API server stopped")
}

// startAPIServer starts the API server and waits until it is ready, which
// ends the outage.
// apiBack reports whether the last API server outage has ended (for the
// replicas: startAPIServer returned).
func (d *driver) apiBack() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.h.APIDown) > 0 && !d.h.APIDown[len(d.h.APIDown)-1].To.IsZero()
}

// outageEndTimeout bounds the wait for an API server outage to end after the
// API server took a write: on the node the pods were seen to reach it
// again over a minute later.
const outageEndTimeout = 5 * time.Minute

func (d *driver) startAPIServer() {
	d.must(d.site.startAPIServer(context.Background()))
	now := time.Now()
	d.mu.Lock()
	d.h.APIDown[len(d.h.APIDown)-1].To = now
	d.mu.Unlock()
	d.event("API server ready again")
}

// runScenario runs sc on a cluster the site deploys and returns its
// history.
func runScenario(t *testing.T, st site, sc scenario, short bool) *History {
	cs, err := kubernetes.NewForConfig(st.admin())
	if err != nil {
		t.Fatal(err)
	}
	newNamespace := func(prefix string) string {
		ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ns.Name
	}
	// A scenario that fails while the API server is down must not leave
	// it down for the next (a no-op when it runs).
	t.Cleanup(func() {
		if err := st.startAPIServer(context.Background()); err != nil {
			t.Errorf("restart the API server: %v", err)
		}
	})
	dep := st.deploy(t, sc, newNamespace)
	c := dep.c
	started := c.Replicas[:*voters]
	rec := &recorder{}
	w := &writer{cs: cs, ns: newNamespace(sc.name), zone: c.Zone, rec: rec}
	h := &History{Scenario: sc.name, Voters: *voters, MarkerAnswered: map[string]time.Time{}, Converged: map[string]time.Time{}}
	for _, r := range c.Replicas {
		h.Replicas = append(h.Replicas, r.ID)
	}
	d := &driver{t: t, site: st, c: c, h: h, w: w, rec: rec, short: short, sts: dep.sts, disks: dep.disks}
	d.leader()
	for _, r := range started {
		wait.For(t, r.ID+" to serve the zone", 30*time.Second, func() bool { return probe(r, w.fqdn("never0")).Rcode == dns.RcodeNameError })
	}

	readCtx, stopReads := context.WithCancel(context.Background())
	writeCtx, stopWrites := context.WithCancel(readCtx)
	defer stopReads()
	var readers, writers sync.WaitGroup
	readers.Go(func() { monitor(readCtx, c, rec) })
	d.watch = func(r *cluster.Replica) { readers.Go(func() { read(readCtx, r, w, rec) }) }
	for _, r := range started {
		d.watch(r)
	}
	writers.Go(func() { w.run(writeCtx) })
	h.Start = time.Now()
	phase(warmUp)

	h.Fault = time.Now()
	heal := sc.inject(d)
	writers.Go(func() { d.followMarker(writeCtx) })
	phase(sc.hold(short))
	h.Heal = time.Now()
	heal()
	phase(settle)

	stopWrites()
	writers.Wait()
	h.WritesStopped = time.Now()
	d.converge()
	stopReads()
	readers.Wait()
	h.End = time.Now()
	for _, ivs := range [][]Interval{h.Down, h.Lagging, h.APIDown} {
		for i := range ivs {
			if ivs[i].To.IsZero() {
				ivs[i].To = h.End
			}
		}
	}
	rec.mu.Lock()
	h.Writes, h.Answers, h.Leaders = rec.writes, rec.answers, rec.leaders
	rec.mu.Unlock()
	return h
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

// phase lets the workload run for a fixed stretch.
func phase(d time.Duration) {
	if d > 0 {
		<-time.After(d)
	}
}

// followMarker makes the write after the fault and records when each
// expected replica first answers it.
func (d *driver) followMarker(ctx context.Context) {
	name, accepted, err := d.w.marker(ctx, "marker")
	if err != nil {
		d.t.Errorf("the write after the fault: %v", err)
		return
	}
	d.h.Marker = name
	d.mu.Lock()
	outage := len(d.h.APIDown) > 0
	if outage || d.markerTimedFromWrite {
		d.h.MarkerFrom = accepted
	}
	d.mu.Unlock()
	if outage {
		d.eventAt(accepted, "the API server took the write after the fault")
		// The replicas may reach the API server long after it took the
		// write (on the node: when kube-proxy routes the kubernetes
		// Service again); the marker's wait starts when they can, as its
		// clock does (see Check).
		if !wait.Poll(outageEndTimeout, d.apiBack) {
			d.t.Errorf("the API server outage did not end for the replicas within %s of the write after the fault", outageEndTimeout)
			return
		}
	}
	var wg sync.WaitGroup
	for _, id := range d.h.MarkerExpected {
		r := d.c.Replicas[slices.IndexFunc(d.c.Replicas, func(r *cluster.Replica) bool { return r.ID == id })]
		wg.Go(func() {
			var at time.Time
			if wait.Poll(rejoinTimeout, func() bool {
				a := probe(r, name)
				at = a.At
				return a.Rcode == dns.RcodeSuccess && len(a.Addrs) > 0
			}) {
				d.mu.Lock()
				d.h.MarkerAnswered[r.ID] = at
				d.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// converge lists the API's final state and waits for every replica to
// answer every name as it does.
func (d *driver) converge() {
	ctx := context.Background()
	final := map[string]string{}
	names := d.w.names()
	svcs, err := d.w.cs.CoreV1().Services(d.w.ns).List(ctx, metav1.ListOptions{})
	d.must(err)
	sls, err := d.w.cs.DiscoveryV1().EndpointSlices(d.w.ns).List(ctx, metav1.ListOptions{})
	d.must(err)
	addr := map[string][]string{}
	for _, s := range sls.Items {
		for _, e := range s.Endpoints {
			addr[s.Name] = append(addr[s.Name], e.Addresses...)
		}
	}
	exists := map[string]bool{}
	for _, s := range svcs.Items {
		exists[s.Name] = true
	}
	for _, n := range names {
		short := n[:len(n)-len("."+d.w.ns+".svc."+d.w.zone)]
		switch as := addr[short]; {
		case !exists[short]:
			final[n] = ObsAbsent
		case len(as) == 0:
			final[n] = ObsNoData
		default:
			slices.Sort(as)
			final[n] = joinAddrs(as)
		}
	}
	d.h.Final = final
	var wg sync.WaitGroup
	for _, r := range d.c.Replicas {
		if slices.Contains(d.h.Removed, r.ID) {
			continue
		}
		wg.Go(func() {
			if wait.Poll(convergeTimeout, func() bool {
				for _, n := range names {
					if probe(r, n).Observable() != final[n] {
						return false
					}
				}
				return true
			}) {
				d.mu.Lock()
				d.h.Converged[r.ID] = time.Now()
				d.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func joinAddrs(as []string) string { return Answer{Rcode: 0, Addrs: as}.Observable() }

// TestChaos runs every scenario of the profile, checks each history, and
// writes the report; a property that fails fails the test.
func TestChaos(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	var st site
	if *onNode {
		st = newNodeSite(t)
	} else {
		st = newLocalSite(t)
	}
	short := *profile == "short"
	dir, md := *assetsDir, *reportMD
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if md == "" {
		md = filepath.Join(dir, "CHAOS.md")
	}
	var reports []ScenarioReport
	for _, sc := range scenarios {
		if short && !sc.short || *onNode && sc.layout != (layout{}) {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			h := runScenario(t, st, sc, short)
			res := Check(h, bounds)
			if *histories != "" {
				raw, err := json.Marshal(h)
				if err == nil {
					err = os.WriteFile(filepath.Join(*histories, sc.name+".json"), raw, 0o644)
				}
				if err != nil {
					t.Errorf("history: %v", err)
				}
			}
			png, err := Timeline(h, dir)
			if err != nil {
				t.Errorf("timeline: %v", err)
			}
			reports = append(reports, ScenarioReport{Result: res, About: sc.about, Hold: sc.hold(short).String(), Timeline: png, Events: relative(h)})
			for _, v := range res.Verdicts {
				if !v.Pass {
					t.Errorf("%s: %s", v.Property, v.Detail)
				} else {
					t.Logf("%s: %s", v.Property, v.Detail)
				}
			}
		})
	}
	if err := WriteReport(md, dir, st.run(*profile), bounds, reports); err != nil {
		t.Fatal(err)
	}
	t.Logf("report written to %s (timelines and chaos.json in %s)", md, dir)
}
