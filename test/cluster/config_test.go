package cluster

import (
	"context"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// answersWithTTL reports whether r answers name (A) with exactly the
// address want, with TTL ttl.
func answersWithTTL(r *Replica, name, want string, ttl uint32) bool {
	reply, err := r.Query(name, dns.TypeA, false)
	if err != nil || reply.Rcode != dns.RcodeSuccess || len(reply.Answer) != 1 {
		return false
	}
	a, ok := reply.Answer[0].(*dns.A)
	return ok && a.A.String() == want && a.Hdr.Ttl == ttl
}

// allAnswer waits until every running replica answers name with want and
// ttl, polling them together, and returns how long that took from since.
func allAnswer(t *testing.T, c *Cluster, since time.Time, name, want string, ttl uint32) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range c.Replicas {
		if !r.Running() {
			continue
		}
		wg.Go(func() {
			if !wait.Poll(30*time.Second, func() bool { return answersWithTTL(r, name, want, ttl) }) {
				t.Errorf("%s does not answer %s A %s TTL %d", r.ID, name, want, ttl)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return time.Since(since)
}

func setConfigMap(t *testing.T, cs kubernetes.Interface, ns string, data map[string]string) time.Time {
	t.Helper()
	ctx := context.Background()
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(ctx, "kdnsd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = data
	start := time.Now()
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return start
}

// TestConfigMapChangesEveryReplica: the DNS configuration of a ConfigMap
// written through the real API server reaches all 3 replicas through the
// Raft log, which switch at the same index (TTL, custom records in and
// outside the cluster zone, upstreams); an invalid change changes no answer
// and shows as an Event, a metric and in every replica's status; a replica
// restarted while the API server is down serves the last configuration
// committed.
func TestConfigMapChangesEveryReplica(t *testing.T) {
	cs := admin(t)
	ns := namespace(t, cs)
	ctx := context.Background()
	up := startUpstream(t, "192.0.2.77")
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kdnsd"},
		Data: map[string]string{"ttl": "5", "records": "db.corp.example. A 10.1.2.3\nregistry.tools.cluster.local. A 10.1.2.4"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env := testenv.Get(t)
	c, err := New(bin, env.KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	c.ExtraArgs = []string{"--config-map", ns + "/kdnsd"}
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	leader := waitLeader(t, c)
	allAnswer(t, c, time.Now(), "db.corp.example.", "10.1.2.3", 5)
	allAnswer(t, c, time.Now(), "registry.tools.cluster.local.", "10.1.2.4", 5)

	// Write → every replica answering the new way, a few times.
	var took []time.Duration
	for i, addr := range []string{"10.9.9.1", "10.9.9.2", "10.9.9.3", "10.9.9.4", "10.9.9.5"} {
		ttl := uint32(10 + i)
		start := setConfigMap(t, cs, ns, map[string]string{"ttl": strconv.FormatUint(uint64(ttl), 10), "records": "db.corp.example. A " + addr + "\nregistry.tools.cluster.local. A 10.1.2.4",
			"upstreams": up.addr})
		took = append(took, allAnswer(t, c, start, "db.corp.example.", addr, ttl))
	}
	slices.Sort(took)
	t.Logf("ConfigMap write → all 3 replicas answering the new way: median %v, max %v (%d changes)",
		took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took))
	// The cluster TTL, and the upstream, switched with the records.
	for _, r := range c.Replicas {
		if !answersWithTTL(r, "registry.tools.cluster.local.", "10.1.2.4", 14) {
			t.Errorf("%s: a custom record without TTL does not take the configured cluster TTL", r.ID)
		}
		wait.For(t, r.ID+" to forward to the configured upstream", 10*time.Second, func() bool {
			return answersA(r, "www.example.org.", "192.0.2.77")
		})
	}
	index := status(t, leader).ConfigIndex
	for _, r := range c.Replicas {
		if st := status(t, r); st.ConfigIndex != index || st.ConfigSource == "flags" {
			t.Errorf("%s serves the configuration of index %d from %s, the leader %d", r.ID, st.ConfigIndex, st.ConfigSource, index)
		}
	}

	// An invalid change changes nothing, and says so.
	setConfigMap(t, cs, ns, map[string]string{"ttl": "soon", "records": "db.corp.example. A 10.6.6.6"})
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to show the refusal in its status", 30*time.Second, func() bool {
			st, err := r.Status(ctx)
			return err == nil && regexp.MustCompile(`key "ttl": "soon": want seconds`).MatchString(st.ConfigError) &&
				st.ConfigIndex == index
		})
		if !answersWithTTL(r, "db.corp.example.", "10.9.9.5", 14) {
			t.Errorf("%s: the refused configuration changed an answer", r.ID)
		}
	}
	// Counted once, by the replica that led then, whichever leads now. The
	// leader counts a refusal once its commit returns, which may be after
	// the replicas show it: the counters are waited for.
	var counted []string
	if !wait.Poll(10*time.Second, func() bool {
		counted = counted[:0]
		for _, r := range c.Replicas {
			counted = append(counted, metric(t, r, "kdnsd_config_rejections_total"))
		}
		slices.Sort(counted)
		return slices.Equal(counted, []string{"0", "0", "1"})
	}) {
		t.Errorf("kdnsd_config_rejections_total of the replicas: %q, want one 1", counted)
	}
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.AndSelectors(
		fields.OneTermEqualSelector("reason", "ConfigRejected"), fields.OneTermEqualSelector("involvedObject.name", "kdnsd")).String()})
	if err != nil || len(evs.Items) != 1 || evs.Items[0].Type != corev1.EventTypeWarning {
		t.Errorf("ConfigRejected Events: %v %+v", err, evs)
	}

	// A replica restarted with the API server down serves the last
	// configuration committed, from its disk.
	r := c.Replicas[0]
	if r == leader {
		r = c.Replicas[1]
	}
	r.Kill()
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.StartAPIServer(context.Background()); err != nil {
			t.Errorf("restart API server: %v", err)
		}
	})
	wait.For(t, r.ID+" to exit", 10*time.Second, func() bool { return !r.Running() })
	start := time.Now()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, r.ID+" to answer from the last configuration after restart", 10*time.Second, func() bool {
		return answersWithTTL(r, "db.corp.example.", "10.9.9.5", 14) && answersA(r, "www.example.net.", "192.0.2.77")
	})
	t.Logf("%s answered from the last committed configuration %v after start (API server down)", r.ID,
		time.Since(start).Round(time.Millisecond))
}

// TestConfigMapPodModeVerified: a ConfigMap that turns on the verified pod
// mode (the flag says insecure) makes the leader's watcher replicate pods,
// so that every replica answers the address of a pod behind no Service and
// no other address.
func TestConfigMapPodModeVerified(t *testing.T) {
	cs := admin(t)
	ns := namespace(t, cs)
	ctx := context.Background()
	createPod(t, cs, &fsm.Pod{Namespace: ns, Name: "lonely", IPs: []netip.Addr{netip.MustParseAddr("10.244.7.7")}}, corev1.PodRunning)
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kdnsd"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	c.ExtraArgs = []string{"--config-map", ns + "/kdnsd"}
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c)
	other := "10-244-7-8." + ns + ".pod.cluster.local."
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer any pod address (insecure, the flag)", 30*time.Second, func() bool {
			return answersA(r, other, "10.244.7.8")
		})
	}
	setConfigMap(t, cs, ns, map[string]string{"podMode": "verified"})
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer the pod's address only (verified, from pods)", 30*time.Second, func() bool {
			reply, err := r.Query(other, dns.TypeA, false)
			return err == nil && reply.Rcode == dns.RcodeNameError &&
				answersA(r, "10-244-7-7."+ns+".pod.cluster.local.", "10.244.7.7")
		})
	}
}
