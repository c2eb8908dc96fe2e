package resolver

import (
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

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

// BenchmarkUpdate is what a new View costs a replica's resolver at 10k and
// 100k services (resolvertest.BigView): a full build, the live heap of the
// index, and a View that changes one service or one endpoint slice, made
// from the last as a store makes it (fsm.View.Apply). cpu-ns/op is the
// process's CPU time (GC included), which a loaded machine inflates less
// than ns/op.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		v := resolvertest.BigView(n, 1)
		b.Run(fmt.Sprintf("full-%dk", n/1000), func(b *testing.B) {
			r := newTestResolver(b, nil)
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				r.idx.Store(nil) // nothing to reuse
				r.Update(v)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(r.idx.Load().nodes.Len()), "names")
		})
		b.Run(fmt.Sprintf("heap-%dk", n/1000), func(b *testing.B) {
			var before, after runtime.MemStats
			var r *Resolver
			for b.Loop() {
				r = newTestResolver(b, nil)
				runtime.GC()
				runtime.ReadMemStats(&before)
				r.Update(v)
				runtime.GC()
				runtime.ReadMemStats(&after)
			}
			runtime.KeepAlive(r)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc), "B/index")
		})
		svc := *v.Service(fsm.ServiceKey{Namespace: "ns-0", Name: "svc-10"})
		svc.ClusterIPs = []netip.Addr{netip.MustParseAddr("10.255.0.1")}
		slice := *v.Slice(fsm.SliceKey{Namespace: "ns-0", Name: "svc-14-abcde"})
		slice.Endpoints = slice.Endpoints[1:]
		for _, c := range []struct {
			name string
			cmd  fsm.Command
		}{
			{"one-service", fsm.UpsertService(&svc)},
			{"one-slice", fsm.UpsertSlice(&slice)},
		} {
			b.Run(fmt.Sprintf("%s-%dk", c.name, n/1000), func(b *testing.B) {
				r := newTestResolver(b, v)
				// Alternate between two Views that differ in one object.
				views := [2]*fsm.View{v, v.Apply(2, c.cmd)}
				runtime.GC() // the setup's garbage is not the loop's
				b.ReportAllocs()
				cpu := cpuTime()
				for i := 0; b.Loop(); i++ {
					r.Update(views[(i+1)%2])
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per op, as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
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
	cpu := cpuTime()
	for b.Loop() {
		r.AnswerUDP(out, q)
	}
	reportCPU(b, cpu)
}
