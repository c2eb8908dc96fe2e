package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	adminapi "github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/test/testenv"

	"github.com/kdnsd/kdnsd/test/wait"
)

// bin is the kdnsd binary under test. The tests that need an API server
// share one etcd + kube-apiserver (testenv.Get).
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kdnsd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "kdnsd")
		root, err := testenv.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command("go", "build", "-o", bin, "./cmd/kdnsd")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build kdnsd:", err)
			return 1
		}
		return testenv.Run(m)
	}()
	os.Exit(code)
}

// newCluster starts n replicas against the package's API server with the
// least-privilege kdnsd identity, and kills them when the test ends.
func newCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	dir := t.TempDir()
	c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, dir, n)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return c
}

// stopOnCleanup kills c's replicas when the test ends, and shows the end of
// their logs if it failed.
func stopOnCleanup(t *testing.T, c *Cluster) {
	t.Cleanup(func() {
		c.StopAll()
		if t.Failed() {
			for _, r := range c.Replicas {
				t.Logf("--- %s log tail:\n%s", r.ID, r.LogTail(40))
			}
		}
	})
}

// waitLeader waits for a leader, for every running voter to be admitted
// to vote, and for every running replica to know the leader: a replica that
// joined after the bootstrap votes only once the leader has promoted it, and
// a test that stops the leader before then would find no majority to elect
// another; and a replica that has not yet heard from a new leader answers
// admin requests with "no leader", however soon after the election.
func waitLeader(t *testing.T, c *Cluster) *Replica {
	t.Helper()
	var leader *Replica
	wait.For(t, "a leader, every voter admitted and every replica following it", 30*time.Second, func() bool {
		leader = c.Leader(context.Background())
		if leader == nil {
			return false
		}
		for _, r := range c.Replicas {
			if !r.Running() {
				continue
			}
			st, err := r.Status(context.Background())
			if err != nil || st.LeaderID != leader.ID {
				return false
			}
			if !r.ReadReplica && st.Admission != "admitted" && st.Admission != "" {
				return false
			}
		}
		return true
	})
	return leader
}

// status reads r's /status, waiting for its HTTP listener, which comes up
// after DNS.
func status(t *testing.T, r *Replica) adminapi.Status {
	t.Helper()
	var st adminapi.Status
	wait.For(t, r.ID+" /status", 10*time.Second, func() bool {
		var err error
		st, err = r.Status(context.Background())
		return err == nil
	})
	return st
}

func admin(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testenv.Get(t).AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// serviceOnAll creates a ClusterIP service in ns and waits until every
// replica of c answers its cluster IP, which it returns.
func serviceOnAll(t *testing.T, c *Cluster, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	ip := createService(t, cs, ns, name).String()
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer "+name, 30*time.Second, func() bool { return answersA(r, fqdn(name, ns), ip) })
	}
	return ip
}

// createService creates a ClusterIP service with one named port and returns
// its cluster IP.
func createService(t *testing.T, cs kubernetes.Interface, ns, name string) netip.Addr {
	t.Helper()
	svc, err := cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddr(svc.Spec.ClusterIP)
}

// createHeadless creates a headless service and one EndpointSlice with the
// given ready addresses.
func createHeadless(t *testing.T, cs kubernetes.Interface, ns, name string, ips ...string) {
	t.Helper()
	ctx := context.Background()
	_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var eps []discoveryv1.Endpoint
	for _, ip := range ips {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}})
	}
	_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(8080))}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// answersA reports whether r answers name with exactly the addresses want.
func answersA(r *Replica, name string, want ...string) bool {
	reply, err := r.Query(name, dns.TypeA, false)
	if err != nil || reply.Rcode != dns.RcodeSuccess {
		return false
	}
	var got []string
	for _, rr := range reply.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	return slices.Equal(got, want)
}

func fqdn(svc, ns string) string { return svc + "." + ns + ".svc.cluster.local." }
