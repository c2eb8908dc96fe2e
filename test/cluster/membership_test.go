package cluster

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// statefulSet stands in for kdnsd's StatefulSet in the API: the
// StatefulSet object and its pods, with IPs in their status. No controller
// or kubelet runs; the test plays both.
type statefulSet struct {
	t  *testing.T
	cs kubernetes.Interface
	ns string
}

func newStatefulSet(t *testing.T, cs kubernetes.Interface, replicas int32) *statefulSet {
	t.Helper()
	s := &statefulSet{t: t, cs: cs, ns: namespace(t, cs)}
	labels := map[string]string{"app.kubernetes.io/name": "kdnsd-test"}
	_, err := cs.AppsV1().StatefulSets(s.ns).Create(context.Background(), &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kdnsd"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "kdnsd-peers",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:dev"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *statefulSet) scale(replicas int32) {
	s.t.Helper()
	ctx := context.Background()
	sts, err := s.cs.AppsV1().StatefulSets(s.ns).Get(ctx, "kdnsd", metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	sts.Spec.Replicas = &replicas
	if _, err := s.cs.AppsV1().StatefulSets(s.ns).Update(ctx, sts, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// runPod creates the replica's pod with the replica's IP in its status.
func (s *statefulSet) runPod(r *Replica) {
	s.t.Helper()
	ctx := context.Background()
	pod, err := s.cs.CoreV1().Pods(s.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: r.ID, Labels: map[string]string{"app.kubernetes.io/name": "kdnsd-test"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:dev"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = r.Host()
	pod.Status.PodIPs = []corev1.PodIP{{IP: r.Host()}}
	if _, err := s.cs.CoreV1().Pods(s.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *statefulSet) deletePod(r *Replica) {
	s.t.Helper()
	zero := int64(0)
	err := s.cs.CoreV1().Pods(s.ns).Delete(context.Background(), r.ID, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil {
		s.t.Fatal(err)
	}
}

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
func newDiscoveredCluster(t *testing.T, n int, prepare ...func(*Cluster)) (*Cluster, *statefulSet) {
	t.Helper()
	cs := admin(t)
	sts := newStatefulSet(t, cs, int32(n))
	c, err := NewOnHosts(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	c.Namespace = sts.ns
	for _, p := range prepare {
		p(c)
	}
	stopOnCleanup(t, c)
	for _, r := range c.Replicas {
		sts.runPod(r)
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

	sts.scale(5)
	for _, host := range []string{"127.0.0.14", "127.0.0.15"} {
		if err := c.AddOnHost(host); err != nil {
			t.Fatal(err)
		}
		r := c.Replicas[len(c.Replicas)-1]
		sts.runPod(r)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ips["s1"] = createService(t, cs, ns, "s1").String()
	want := voters(c.Replicas...)
	wait.For(t, "five voters", 30*time.Second, func() bool { return slices.Equal(configuration(c.Replicas[0]), want) })
	ips["s2"] = createService(t, cs, ns, "s2").String()

	sts.scale(3)
	for _, r := range []*Replica{c.Replicas[4], c.Replicas[3]} {
		r.Stop()
		sts.deletePod(r)
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
	sts.deletePod(moved)
	moved.Move("127.0.0.21")
	sts.runPod(moved)
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
