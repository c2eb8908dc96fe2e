package resolver

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// podsView returns resolvertest.BigView's 10,000 services with 10,000 pods in 100
// namespaces, tracked as a leader in verified mode writes them.
func podsView(index uint64) *fsm.View {
	base := resolvertest.BigView(10000, index)
	r := fsm.Records{Tracked: fsm.Tracked{Namespaces: true, Pods: true}}
	for s := range base.Services() {
		r.Services = append(r.Services, s)
	}
	for e := range base.Slices() {
		r.Slices = append(r.Slices, e)
	}
	for i := range 10000 {
		ns := fmt.Sprintf("ns-%d", i/100)
		if i%100 == 0 {
			r.Namespaces = append(r.Namespaces, ns)
		}
		r.Pods = append(r.Pods, &fsm.Pod{Namespace: ns, Name: fmt.Sprintf("pod-%d", i),
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)})}})
	}
	return r.View(index)
}

// BenchmarkVerifiedPods10k: the resolver in verified mode with 10,000
// services and 10,000 pods: a full index build (pods add no names: they are
// looked up per query) and pod queries on the fast path.
func BenchmarkVerifiedPods10k(b *testing.B) {
	v := podsView(1)
	r, err := New(Config{PodMode: PodVerified})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("update-full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.idx.Store(nil) // nothing to reuse
			r.Update(v)
		}
		b.ReportMetric(float64(r.idx.Load().nodes.Len()), "names")
	})
	out := make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
	for _, c := range []struct{ name, qname string }{
		{"pod-A", "10-244-10-1.ns-25.pod.cluster.local."},
		{"pod-NXDOMAIN", "10-244-10-1.ns-26.pod.cluster.local."},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchFastPath(b, r, out, new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
		})
	}
}
