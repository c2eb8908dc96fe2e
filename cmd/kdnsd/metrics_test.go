package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnsserver/dnsservertest"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/resolver"
	"github.com/kdnsd/kdnsd/test/wait"
)

// TestServingMetrics serves a store's records on real sockets as serve
// does: an entry's append time becomes one programming latency
// observation, and the queries asked over UDP and TCP are scraped.
func TestServingMetrics(t *testing.T) {
	sm := newServingMetrics()
	store, err := fsm.Open(filepath.Join(t.TempDir(), "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	res, err := resolver.New(resolver.Config{Served: sm.served})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go res.Follow(ctx, store)
	addr := dnsservertest.Start(t, dnsserver.Config{Handler: res, Counters: sm.dns}, 2)

	web := &fsm.Service{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}
	data, err := fsm.Encode([]fsm.Command{fsm.UpsertService(web)})
	if err != nil {
		t.Fatal(err)
	}
	const latency = 250 * time.Millisecond
	appended := time.Now().Add(-latency) // by a leader
	apply := func(index uint64, appendedAt time.Time) {
		t.Helper()
		if err := store.ApplyEntries([]fsm.Entry{{Index: index, Data: data, AppendedAt: appendedAt}}); err != nil {
			t.Fatal(err)
		}
		wait.For(t, fmt.Sprintf("index %d served", index), 10*time.Second, func() bool { return res.AppliedIndex() == index })
	}
	apply(1, appended)
	count, sum := histogram(t, sm.programming)
	if count != 1 || sum < latency.Seconds() || sum > time.Since(appended).Seconds() {
		t.Errorf("programming latency: %d observations summing %gs, want one of at least %v", count, sum, latency)
	}
	// Appended by a leader whose clock is ahead: counted as zero.
	apply(2, time.Now().Add(time.Hour))
	if c, s := histogram(t, sm.programming); c != 2 || s != sum {
		t.Errorf("after an entry from the future: %d observations summing %gs, want 2 summing %gs", c, s, sum)
	}
	// No append time (an entry from a build that had none): not observed.
	apply(3, time.Time{})
	if c, _ := histogram(t, sm.programming); c != 2 {
		t.Errorf("after an entry without append time: %d observations, want 2", c)
	}

	for _, q := range []struct {
		net, name string
		qtype     uint16
	}{
		{"udp", "web.default.svc.cluster.local.", dns.TypeA},
		{"udp", "web.default.svc.cluster.local.", dns.TypeA},
		{"udp", "nope.default.svc.cluster.local.", dns.TypeSRV},
		{"udp", "web.default.svc.cluster.local.", dns.TypeMX},
		{"tcp", "web.default.svc.cluster.local.", dns.TypeAAAA},
		{"tcp", "10.0.96.10.in-addr.arpa.", dns.TypePTR},
	} {
		c := &dns.Client{Net: q.net, Timeout: 10 * time.Second}
		if _, _, err := c.Exchange(new(dns.Msg).SetQuestion(q.name, q.qtype), addr); err != nil {
			t.Fatalf("%s %s: %v", q.net, q.name, err)
		}
	}
	const want = `
# HELP kdnsd_dns_requests_total DNS queries read, by question type and transport.
# TYPE kdnsd_dns_requests_total counter
kdnsd_dns_requests_total{transport="tcp",type="A"} 0
kdnsd_dns_requests_total{transport="tcp",type="AAAA"} 1
kdnsd_dns_requests_total{transport="tcp",type="PTR"} 1
kdnsd_dns_requests_total{transport="tcp",type="SRV"} 0
kdnsd_dns_requests_total{transport="tcp",type="TXT"} 0
kdnsd_dns_requests_total{transport="tcp",type="other"} 0
kdnsd_dns_requests_total{transport="udp",type="A"} 2
kdnsd_dns_requests_total{transport="udp",type="AAAA"} 0
kdnsd_dns_requests_total{transport="udp",type="PTR"} 0
kdnsd_dns_requests_total{transport="udp",type="SRV"} 1
kdnsd_dns_requests_total{transport="udp",type="TXT"} 0
kdnsd_dns_requests_total{transport="udp",type="other"} 1
# HELP kdnsd_dns_responses_total DNS responses written, by rcode and transport.
# TYPE kdnsd_dns_responses_total counter
kdnsd_dns_responses_total{rcode="FORMERR",transport="tcp"} 0
kdnsd_dns_responses_total{rcode="FORMERR",transport="udp"} 0
kdnsd_dns_responses_total{rcode="NOERROR",transport="tcp"} 2
kdnsd_dns_responses_total{rcode="NOERROR",transport="udp"} 3
kdnsd_dns_responses_total{rcode="NXDOMAIN",transport="tcp"} 0
kdnsd_dns_responses_total{rcode="NXDOMAIN",transport="udp"} 1
kdnsd_dns_responses_total{rcode="REFUSED",transport="tcp"} 0
kdnsd_dns_responses_total{rcode="REFUSED",transport="udp"} 0
kdnsd_dns_responses_total{rcode="SERVFAIL",transport="tcp"} 0
kdnsd_dns_responses_total{rcode="SERVFAIL",transport="udp"} 0
kdnsd_dns_responses_total{rcode="other",transport="tcp"} 0
kdnsd_dns_responses_total{rcode="other",transport="udp"} 0
# HELP kdnsd_dns_udp_requests_by_path_total UDP queries by the path that answered them: fast (written from the raw query without allocating) or general (unpacked by miekg/dns; forwarded queries included).
# TYPE kdnsd_dns_udp_requests_by_path_total counter
kdnsd_dns_udp_requests_by_path_total{path="fast"} 4
kdnsd_dns_udp_requests_by_path_total{path="general"} 0
`
	if err := testutil.CollectAndCompare(dnsCollector{sm.dns}, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// histogram returns the observation count and sum of h.
func histogram(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gathering the histogram: %v %v", mfs, err)
	}
	m := mfs[0].GetMetric()[0].GetHistogram()
	return m.GetSampleCount(), m.GetSampleSum()
}

// TestGoCollectorLiveHeap: the live heap is among the Go runtime's metrics,
// with the default set.
func TestGoCollectorLiveHeap(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(goCollector())
	runtime.GC() // the live heap is that of the last collection
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		if m := f.GetMetric(); len(m) == 1 && m[0].GetGauge() != nil {
			values[f.GetName()] = m[0].GetGauge().GetValue()
		}
	}
	if v := values["go_gc_heap_live_bytes"]; v <= 0 {
		t.Errorf("go_gc_heap_live_bytes = %v, want the live heap", v)
	}
	if _, ok := values["go_memstats_heap_inuse_bytes"]; !ok {
		t.Error("the default go_memstats gauges are gone")
	}
}
