package resolver

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/dnswriter"
	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// BenchmarkFastPath is the UDP fast path without the sockets: the raw query
// in, the response written.
func BenchmarkFastPath(b *testing.B) {
	r := newTestResolver(b, resolvertest.BigView(1000, 1))
	out := make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			req := new(dns.Msg).SetQuestion(c.qname, c.qtype)
			if c.edns {
				req.SetEdns0(1232, false)
			}
			benchFastPath(b, r, out, req)
		})
	}
	b.Run("parallel-mix", func(b *testing.B) {
		var qs [][]byte
		for i := range 1000 {
			name := fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i, i/50)
			q, _ := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
			qs = append(qs, q)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			out := make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
			for i := 0; pb.Next(); i++ {
				r.AnswerUDP(out, qs[i%len(qs)])
			}
		})
	})
}

// discard is a dns.ResponseWriter, addressed as UDP, that drops what is
// written.
func discard() *dnswriter.Writer {
	return &dnswriter.Writer{Local: dnswritertest.ServerUDP, Remote: dnswritertest.ClientUDP, Send: func(b []byte) (int, error) { return len(b), nil }}
}

// benchCases are the queries the ServeDNS and fast path benchmarks ask of
// resolvertest.BigView(1000).
var benchCases = []struct {
	name  string
	qname string
	qtype uint16
	edns  bool
}{
	{"A", "svc-10.ns-0.svc.cluster.local.", dns.TypeA, false},
	{"A-mixedcase-edns", "SVC-10.Ns-0.svc.Cluster.Local.", dns.TypeA, true},
	{"headless-A", "svc-14.ns-0.svc.cluster.local.", dns.TypeA, false},
	{"SRV", "_http._tcp.svc-10.ns-0.svc.cluster.local.", dns.TypeSRV, true},
	{"headless-SRV", "_http._tcp.svc-14.ns-0.svc.cluster.local.", dns.TypeSRV, true},
	{"NODATA", "svc-10.ns-0.svc.cluster.local.", dns.TypeAAAA, false},
	{"NXDOMAIN", "svc-10.ns-0.svc.cluster.local.ns-0.svc.cluster.local.", dns.TypeA, false},
	{"REFUSED", "example.com.", dns.TypeA, false},
	{"PTR", "10.0.96.10.in-addr.arpa.", dns.TypePTR, false},
	{"pod-insecure", "10-1-2-3.ns-0.pod.cluster.local.", dns.TypeA, false},
}

func BenchmarkServeDNS(b *testing.B) {
	r := newTestResolver(b, resolvertest.BigView(1000, 1))
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			req := new(dns.Msg).SetQuestion(c.qname, c.qtype)
			if c.edns {
				req.SetEdns0(1232, false)
			}
			w := discard()
			b.ReportAllocs()
			for b.Loop() {
				r.ServeDNS(w, req)
			}
		})
	}
	// Parallel, over a spread of names, as a server sees it.
	b.Run("parallel-mix", func(b *testing.B) {
		var reqs []*dns.Msg
		for i := range 1000 {
			name := fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i, i/50)
			reqs = append(reqs, new(dns.Msg).SetQuestion(name, dns.TypeA))
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := discard()
			for i := 0; pb.Next(); i++ {
				r.ServeDNS(w, reqs[i%len(reqs)])
			}
		})
	})
}

func BenchmarkUpdate(b *testing.B) {
	const n = 10000
	v := resolvertest.BigView(n, 1)
	b.Run("full-10k", func(b *testing.B) {
		r := newTestResolver(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			r.idx.Store(nil) // nothing to reuse
			r.Update(v)
		}
		b.ReportMetric(float64(len(r.idx.Load().nodes)), "names")
	})
	b.Run("one-changed-10k", func(b *testing.B) {
		r := newTestResolver(b, v)
		// Alternate between two Views that differ in one service.
		var svcs []*fsm.Service
		var eps []*fsm.EndpointSlice
		for s := range v.Services() {
			if s.Name == "svc-10" {
				c := *s
				c.ClusterIPs = []netip.Addr{netip.MustParseAddr("10.255.0.1")}
				s = &c
			}
			svcs = append(svcs, s)
		}
		for e := range v.Slices() {
			eps = append(eps, e)
		}
		w := fsm.NewView(2, svcs, eps)
		views := [2]*fsm.View{v, w}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			r.Update(views[i%2])
		}
	})
}

// benchFastPath measures r's fast path answering req into out, after
// checking that the fast path answers it at all.
func benchFastPath(b *testing.B, r *Resolver, out []byte, req *dns.Msg) {
	q, err := req.Pack()
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := r.AnswerUDP(out, q); !ok {
		b.Fatal("not answered by the fast path")
	}
	b.ReportAllocs()
	for b.Loop() {
		r.AnswerUDP(out, q)
	}
}
