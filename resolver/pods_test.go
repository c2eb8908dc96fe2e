package resolver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// TestPodNamesFollowTrackedKinds: until the View holds namespaces and pods
// in full (a cluster that still writes an older command format, or a leader
// not in verified mode), pod names are answered as before: in any
// namespace, and in verified mode for the services' endpoint addresses.
// Once the View tracks them, the same resolver answers from them, and back.
func TestPodNamesFollowTrackedKinds(t *testing.T) {
	services, slices := resolvertest.Fixture()
	pods, _ := resolvertest.FixturePods()
	untracked := func(index uint64) *fsm.View {
		r := fsm.Records{Services: services, Slices: slices, Namespaces: resolvertest.FixtureNamespaces(), Pods: pods}
		return r.View(index)
	}
	rcode := func(r *Resolver, name string) int {
		return exchange(t, r, new(dns.Msg).SetQuestion(name, dns.TypeA), false).Rcode
	}
	const (
		endpointNoPod = "10-244-3-1.kube-system.pod.cluster.local."
		podNoEndpoint = "10-244-5-5.other.pod.cluster.local."
		noNamespace   = "10-1-2-3.nons.pod.cluster.local."
	)
	tests := []struct {
		mode string
		name string
		// wantUntracked and wantTracked are the rcodes without and with
		// namespaces and pods tracked.
		wantUntracked, wantTracked int
	}{
		{PodVerified, endpointNoPod, dns.RcodeSuccess, dns.RcodeNameError},
		{PodVerified, podNoEndpoint, dns.RcodeNameError, dns.RcodeSuccess},
		{PodVerified, "kube-system.pod.cluster.local.", dns.RcodeSuccess, dns.RcodeNameError},
		{PodVerified, noNamespace, dns.RcodeNameError, dns.RcodeNameError},
		{PodInsecure, noNamespace, dns.RcodeSuccess, dns.RcodeNameError},
		{PodInsecure, "nons.pod.cluster.local.", dns.RcodeSuccess, dns.RcodeNameError},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.name, func(t *testing.T) {
			r, err := New(Config{PodMode: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			for i, step := range []struct {
				view *fsm.View
				want int
			}{
				{untracked(1), tt.wantUntracked},
				{resolvertest.FixtureView(2), tt.wantTracked},
				{untracked(3), tt.wantUntracked},
			} {
				r.Update(step.view)
				if got := rcode(r, tt.name); got != step.want {
					t.Errorf("step %d (tracked %+v): %s, want %s", i, step.view.Tracked(),
						dns.RcodeToString[got], dns.RcodeToString[step.want])
				}
			}
		})
	}
}

// TestPodQueriesDoNotAllocate: answering a pod name from the View's
// namespaces and pods allocates nothing on the fast path, also for a
// namespace name longer than the compiler's small stack buffers.
func TestPodQueriesDoNotAllocate(t *testing.T) {
	long := strings.Repeat("n", 63)
	services, slices := resolvertest.Fixture()
	pods, _ := resolvertest.FixturePods()
	pods = append(pods, &fsm.Pod{Namespace: long, Name: "p", IPs: addrs("10.244.7.7")})
	v := (&fsm.Records{Services: services, Slices: slices, Namespaces: append(resolvertest.FixtureNamespaces(), long),
		Pods: pods, Tracked: fsm.Tracked{Namespaces: true, Pods: true}}).View(1)
	out := make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
	for _, mode := range []string{PodInsecure, PodVerified} {
		r, err := New(Config{PodMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		r.Update(v)
		for _, name := range []string{"10-244-7-7." + long + ".pod.cluster.local.", long + ".pod.cluster.local.",
			"10-244-5-5.other.pod.cluster.local.", "10-1-2-3.nons.pod.cluster.local."} {
			q, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := r.AnswerUDP(out, q); !ok {
				t.Fatalf("%s %s: not answered by the fast path", mode, name)
			}
			if n := testing.AllocsPerRun(20, func() { r.AnswerUDP(out, q) }); n != 0 {
				t.Errorf("%s %s: %v allocations", mode, name, n)
			}
		}
	}
}
