package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestEveryReplicaAnswers: records created through the API are answered by
// all three replicas, over UDP and TCP, and by dig.
func TestEveryReplicaAnswers(t *testing.T) {
	c := newCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	webIP := createService(t, cs, ns, "web")
	createHeadless(t, cs, ns, "db", "10.1.0.1", "10.1.0.2")

	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer web and db", 20*time.Second, func() bool {
			return answersA(r, fqdn("web", ns), webIP.String()) && answersA(r, fqdn("db", ns), "10.1.0.1", "10.1.0.2")
		})
		reply, err := r.Query(fqdn("web", ns), dns.TypeA, true)
		if err != nil || len(reply.Answer) != 1 {
			t.Errorf("%s over TCP: %v %v", r.ID, reply, err)
		}
		reply, err = r.Query("_http._tcp."+fqdn("web", ns), dns.TypeSRV, false)
		if err != nil || len(reply.Answer) != 1 || reply.Answer[0].(*dns.SRV).Port != 80 {
			t.Errorf("%s SRV: %v %v", r.ID, reply, err)
		}
		reply, err = r.Query(fqdn("nope", ns), dns.TypeA, false)
		if err != nil || reply.Rcode != dns.RcodeNameError {
			t.Errorf("%s missing name: %v %v", r.ID, reply, err)
		}
	}

	// A real client's view.
	host, port, _ := strings.Cut(c.Replicas[1].DNSAddr, ":")
	out, err := exec.Command("dig", "@"+host, "-p", port, "+short", "+tries=1", "+time=2", fqdn("db", ns), "A").Output()
	if err != nil {
		t.Fatalf("dig: %v", err)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	if !slices.Equal(got, []string{"10.1.0.1", "10.1.0.2"}) {
		t.Fatalf("dig answered %q", out)
	}
}

// TestLeaderKillFailover: kill -9 the leader; another replica takes over and
// watches the API, a service created afterwards reaches both survivors, and
// the killed replica catches up when it comes back.
func TestLeaderKillFailover(t *testing.T) {
	c := newCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	beforeIP := createService(t, cs, ns, "before")
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer before", 20*time.Second, func() bool { return answersA(r, fqdn("before", ns), beforeIP.String()) })
	}
	old := waitLeader(t, c)
	killed := time.Now()
	old.Kill()
	next := waitLeader(t, c)
	failover := time.Since(killed)
	if next == old {
		t.Fatal("killed replica still leads")
	}
	t.Logf("failover: %s → %s leads after %s", old.ID, next.ID, failover)

	afterIP := createService(t, cs, ns, "after")
	for _, r := range c.Replicas {
		if r == old {
			continue
		}
		wait.For(t, r.ID+" to answer after", 20*time.Second, func() bool { return answersA(r, fqdn("after", ns), afterIP.String()) })
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, old.ID+" to catch up", 20*time.Second, func() bool { return answersA(old, fqdn("after", ns), afterIP.String()) })
}

// TestRestartWithAPIServerDown: with the API server stopped, every replica
// restarted answers every existing name at once from its disk.
func TestRestartWithAPIServerDown(t *testing.T) {
	c := newCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	names := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("s%d", i)
		names[name] = createService(t, cs, ns, name).String()
	}
	createHeadless(t, cs, ns, "db", "10.1.0.1", "10.1.0.2")
	answersAll := func(r *Replica) bool {
		for name, ip := range names {
			if !answersA(r, fqdn(name, ns), ip) {
				return false
			}
		}
		return answersA(r, fqdn("db", ns), "10.1.0.1", "10.1.0.2")
	}
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer everything", 20*time.Second, func() bool { return answersAll(r) })
	}

	env := testenv.Get(t)
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.StartAPIServer(context.Background()); err != nil {
			t.Errorf("restart API server: %v", err)
		}
	})
	c.StopAll()
	for _, r := range c.Replicas {
		start := time.Now()
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		// The specification asks for a second: how long it took is a
		// figure (logged here, measured by make bench), not something a
		// test on a machine of any speed can assert.
		wait.For(t, r.ID+" to answer everything after restart", 30*time.Second, func() bool { return answersAll(r) })
		t.Logf("%s answered every name %s after start (API server down)", r.ID, time.Since(start).Round(time.Millisecond))
	}
}

// TestServedIndexIsMonotonicAcrossKill: a replica that answered at applied
// index X answers at ≥ X after kill -9 and restart while the others are down.
func TestServedIndexIsMonotonicAcrossKill(t *testing.T) {
	c := newCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	var lastIP string
	for i := range 5 {
		lastIP = createService(t, cs, ns, fmt.Sprintf("m%d", i)).String()
	}
	r := c.Replicas[2]
	wait.For(t, r.ID+" to answer m4", 20*time.Second, func() bool { return answersA(r, fqdn("m4", ns), lastIP) })
	st := status(t, r)
	c.StopAll() // SIGKILL, all three
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, r.ID+" to answer m4 alone", 10*time.Second, func() bool { return answersA(r, fqdn("m4", ns), lastIP) })
	after := status(t, r)
	if after.ServedIndex < st.ServedIndex {
		t.Fatalf("served index went back from %d to %d", st.ServedIndex, after.ServedIndex)
	}
	if after.State == "Leader" {
		t.Fatal("a lone replica of three leads")
	}
}

// TestRollingRestart: replicas stopped with SIGTERM one at a time, leader
// last; a leader hands over before it stops, so every step has a leader again
// at once, and DNS keeps answering throughout.
func TestRollingRestart(t *testing.T) {
	c := newCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	ip := serviceOnAll(t, c, cs, ns, "steady")
	leader := waitLeader(t, c)
	order := []*Replica{}
	for _, r := range c.Replicas {
		if r != leader {
			order = append(order, r)
		}
	}
	order = append(order, leader)
	for _, r := range order {
		stopped := time.Now()
		r.Stop()
		next := waitLeader(t, c)
		t.Logf("%s stopped; %s leads %s later", r.ID, next.ID, time.Since(stopped).Round(time.Millisecond))
		for _, other := range c.Replicas {
			if other != r && !answersA(other, fqdn("steady", ns), ip) {
				t.Errorf("%s did not answer while %s was down", other.ID, r.ID)
			}
		}
		if strings.Contains(r.LogTail(50), "leadership transfer before shutdown failed") {
			t.Errorf("%s could not hand over leadership:\n%s", r.ID, r.LogTail(20))
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		wait.For(t, r.ID+" to answer after restart", 10*time.Second, func() bool { return answersA(r, fqdn("steady", ns), ip) })
	}
}

// TestNotReadyUntilRecords: a new replica with no records answers the zone
// SERVFAIL (never a cacheable NXDOMAIN) and is not ready until the cluster
// has formed and sent it the records.
func TestNotReadyUntilRecords(t *testing.T) {
	c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, c)
	first := c.Replicas[0]
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	status(t, first)
	reply, err := first.Query("kubernetes.default.svc.cluster.local.", dns.TypeA, false)
	if err != nil || reply.Rcode != dns.RcodeServerFailure {
		t.Fatalf("alone and empty: %v %v", reply, err)
	}
	if code := readyz(first); code != http.StatusServiceUnavailable {
		t.Fatalf("alone and empty: /readyz %d", code)
	}
	for _, r := range c.Replicas[1:] {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to be ready", 20*time.Second, func() bool { return readyz(r) == http.StatusOK })
		if !answersA(r, "kubernetes.default.svc.cluster.local.", "10.96.0.1") {
			t.Errorf("%s ready but not answering", r.ID)
		}
	}
}

// readyz is the status code of r's /readyz, 0 when it does not answer.
func readyz(r *Replica) int {
	resp, err := http.Get("http://" + r.HTTPAddr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
