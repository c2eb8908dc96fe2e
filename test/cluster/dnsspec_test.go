package cluster

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestDNSSpecification runs the resolver's query-case table against three
// replicas fed by the real API server, once with pod records insecure (the
// default) and once verified: the fixture is created as Kubernetes objects
// (its pods pending or run through the status subresource, as no kubelet
// runs here), and every case must hold on every replica. Its fixed cluster
// IPs all lie in the first 256 addresses of each service range, which the
// API server keeps for fixed IPs and hands out dynamically only once the
// rest is exhausted, so other tests' services never take them, whatever
// order the tests run in; the fixture is deleted when the test ends, so it
// can run again (-count=2).
func TestDNSSpecification(t *testing.T) {
	cs := admin(t)
	services, slices := resolvertest.Fixture()
	createFixture(t, cs, services, slices)

	for _, mode := range []string{resolvertest.PodInsecure, resolvertest.PodVerified} {
		t.Run(mode, func(t *testing.T) {
			c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
			if err != nil {
				t.Fatal(err)
			}
			c.ExtraArgs = []string{"--pod-mode", mode}
			stopOnCleanup(t, c)
			if err := c.StartAll(); err != nil {
				t.Fatal(err)
			}
			checkCases(t, c, mode)
		})
	}
}

// checkCases checks every case of the table that holds in pod mode mode
// on every replica of c, and a real client's view of two of them.
func checkCases(t *testing.T, c *Cluster, mode string) {
	cases := resolvertest.Select(resolvertest.Cases(), resolvertest.Config{PodMode: mode, Forward: true})
	if len(cases) < 50 {
		t.Fatalf("only %d cases selected", len(cases))
	}
	for _, r := range c.Replicas {
		var failures []error
		// The replicas converge on the fixture; then every case must hold.
		ok := wait.Poll(30*time.Second, func() bool {
			failures = failures[:0]
			for _, tc := range cases {
				req := tc.Request()
				req.RecursionDesired = false // as a minimal stub resolver asks
				reply, err := r.Exchange(req)
				if err == nil {
					err = resolvertest.Check(reply, tc)
				}
				if err != nil {
					failures = append(failures, err)
				}
			}
			return len(failures) == 0
		})
		if !ok {
			t.Errorf("%s: %d of %d cases fail:\n%v", r.ID, len(failures), len(cases), errors.Join(failures...))
		}
	}

	// A real client's view of a reverse lookup and an SRV with additional
	// records.
	host, port, _ := strings.Cut(c.Replicas[0].DNSAddr, ":")
	out, err := exec.Command("dig", "@"+host, "-p", port, "+short", "+tries=1", "+time=2", "-x", "10.96.0.110").Output()
	if err != nil || strings.TrimSpace(string(out)) != "web.default.svc.cluster.local." {
		t.Errorf("dig -x 10.96.0.110: %q %v", out, err)
	}
	out, err = exec.Command("dig", "@"+host, "-p", port, "+noall", "+answer", "+additional", "+tries=1", "+time=2",
		"_http._tcp.web.default.svc.cluster.local.", "SRV").Output()
	flat := strings.Join(strings.Fields(string(out)), " ")
	if err != nil || !strings.Contains(flat, "IN SRV 0 100 80 web.default.svc.cluster.local.") ||
		!strings.Contains(flat, "web.default.svc.cluster.local. 30 IN A 10.96.0.110") ||
		!strings.Contains(flat, "web.default.svc.cluster.local. 30 IN AAAA fd00:10:96::b0") {
		t.Errorf("dig SRV:\n%s %v", out, err)
	}

	// Issue 10 (branch dns-spec). A client advertising 4096 octets gets a
	// truncated UDP answer of at most 1232 octets, and asks again over TCP
	// (as dig does) for the whole answer.
	out, err = exec.Command("dig", "@"+host, "-p", port, "+bufsize=4096", "+tries=1", "+time=2",
		"_http._tcp.wide.kube-system.svc.cluster.local.", "SRV").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Truncated, retrying in TCP mode") ||
		!strings.Contains(string(out), "ANSWER: "+strconv.Itoa(resolvertest.WideEndpoints)+",") {
		t.Errorf("dig +bufsize=4096 SRV:\n%s %v", out, err)
	}
	// Go's resolver takes the names of IPv6 endpoints without hostname
	// (it rejects a whole answer with one invalid name), and their PTRs.
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, c.Replicas[0].DNSAddr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, srvs, err := res.LookupSRV(ctx, "http", "tcp", "hl6.default.svc.cluster.local.")
	if err != nil || len(srvs) != 2 {
		t.Errorf("LookupSRV hl6: %v %v", srvs, err)
	}
	names, err := res.LookupAddr(ctx, "fd00:10:244:6::")
	if err != nil || len(names) != 1 || names[0] != "fd00-10-244-6--0.hl6.default.svc.cluster.local." {
		t.Errorf("LookupAddr fd00:10:244:6::: %q %v", names, err)
	}
}

// createFixture creates the fixture's namespaces, services (with their fixed
// cluster IPs), endpoint slices and pods. default/kubernetes exists already.
func createFixture(t *testing.T, cs kubernetes.Interface, services []*fsm.Service, slices []*fsm.EndpointSlice) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range resolvertest.FixtureNamespaces() {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, s := range services {
		if s.Namespace == "default" && s.Name == "kubernetes" {
			continue
		}
		if _, err := cs.CoreV1().Services(s.Namespace).Create(ctx, APIService(s), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create service %s/%s: %v", s.Namespace, s.Name, err)
		}
		t.Cleanup(func() {
			if err := cs.CoreV1().Services(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("delete service %s/%s: %v", s.Namespace, s.Name, err)
			}
		})
	}
	for _, e := range slices {
		if _, err := cs.DiscoveryV1().EndpointSlices(e.Namespace).Create(ctx, APISlice(e), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create endpoint slice %s/%s: %v", e.Namespace, e.Name, err)
		}
		t.Cleanup(func() {
			if err := cs.DiscoveryV1().EndpointSlices(e.Namespace).Delete(ctx, e.Name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("delete endpoint slice %s/%s: %v", e.Namespace, e.Name, err)
			}
		})
	}
	pods, terminated := resolvertest.FixturePods()
	for i, p := range append(pods, terminated) {
		// Every other pod stays pending, as pods that no node took do.
		phase := []corev1.PodPhase{corev1.PodRunning, corev1.PodPending}[i%2]
		if p == terminated {
			phase = corev1.PodSucceeded
		}
		createPod(t, cs, p, phase)
	}
}

// createPod creates the Pod whose translation is p, with phase and p's
// addresses set through the status subresource.
func createPod(t *testing.T, cs kubernetes.Interface, p *fsm.Pod, phase corev1.PodPhase) {
	t.Helper()
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/c"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		if err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Errorf("delete pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	})
	pod.Status.Phase = phase
	for _, a := range p.IPs {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: a.String()})
	}
	pod.Status.PodIP = pod.Status.PodIPs[0].IP
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set the status of pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}
