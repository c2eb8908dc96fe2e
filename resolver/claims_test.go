package resolver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
)

// TestSharedPTR: where several services have one address, the PTR record
// served is a cluster IP's before an endpoint's, then the one with the
// smallest target (in wire form); and it is the same whichever service the
// index met first.
func TestSharedPTR(t *testing.T) {
	clusterIP := func(ns, name string) *fsm.Service {
		return &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, ClusterIPs: addrs("10.0.0.7")}
	}
	headless := func(ns, name string) *fsm.Service {
		return &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, Headless: true}
	}
	slice := func(ns, svc string, hosts ...string) *fsm.EndpointSlice {
		e := &fsm.EndpointSlice{Namespace: ns, Name: svc + "-x", Service: svc}
		for _, h := range hosts {
			e.Endpoints = append(e.Endpoints, fsm.Endpoint{Addresses: addrs("10.0.0.7"), Hostname: h, Ready: true})
		}
		return e
	}
	for _, c := range []struct {
		name   string
		svcs   []*fsm.Service
		slices []*fsm.EndpointSlice
		want   []string // targets of 7.0.0.10.in-addr.arpa.
	}{
		{"cluster IP before endpoint",
			[]*fsm.Service{headless("a", "hl"), clusterIP("b", "web")},
			[]*fsm.EndpointSlice{slice("a", "hl", "h")},
			[]string{"web.b.svc.cluster.local."}},
		{"smaller target among cluster IPs, in wire form: a shorter label first",
			[]*fsm.Service{clusterIP("b", "web"), clusterIP("a", "zz")},
			nil,
			[]string{"zz.a.svc.cluster.local."}},
		{"smaller target among cluster IPs, in wire form: then its octets",
			[]*fsm.Service{clusterIP("b", "web"), clusterIP("a", "wax")},
			nil,
			[]string{"wax.a.svc.cluster.local."}},
		{"smallest target among endpoints",
			[]*fsm.Service{headless("a", "hl"), headless("a", "other")},
			[]*fsm.EndpointSlice{slice("a", "hl", "z"), slice("a", "other", "b", "y")},
			[]string{"b.other.a.svc.cluster.local.", "y.other.a.svc.cluster.local."}},
	} {
		// Every order in which the services come to the index.
		for _, order := range [][2]int{{0, 1}, {1, 0}} {
			r := newTestResolver(t, nil)
			var svcs []*fsm.Service
			for i, k := range order {
				svcs = append(svcs, c.svcs[k])
				r.Update(fsm.NewView(uint64(i+1), svcs, c.slices))
			}
			resp := exchange(t, r, new(dns.Msg).SetQuestion("7.0.0.10.in-addr.arpa.", dns.TypePTR), false)
			var got []string
			for _, rr := range resp.Answer {
				got = append(got, rr.(*dns.PTR).Ptr)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s, order %v: PTR %q, want %q", c.name, order, got, c.want)
			}
		}
	}
}

// TestChased: which CNAMEs the resolver chases without Forward: a target in
// the zone, or, from a custom record, a custom name outside it; never a
// Service's CNAME to a custom name outside the zone, which it answers
// alone. With Forward, every one.
func TestChased(t *testing.T) {
	ext := func(name, target string) *fsm.Service {
		return &fsm.Service{Namespace: "default", Name: name, Type: fsm.TypeExternalName, ExternalName: target}
	}
	rec := fsm.Records{
		Services: []*fsm.Service{ext("in", "web.default.svc.cluster.local"), ext("out", "example.com"),
			ext("custom", "db.corp.example")},
		Config: &fsm.ConfigState{Index: 1, Config: &fsm.DNSConfig{Source: "test", Records: []fsm.Record{
			{Name: "db.corp.example.", Type: "A", Data: "10.1.2.3"},
			{Name: "www.corp.example.", Type: "CNAME", Data: "db.corp.example."},
			{Name: "far.corp.example.", Type: "CNAME", Data: "example.com."},
			{Name: "alias.tools.cluster.local.", Type: "CNAME", Data: "in.default.svc.cluster.local."},
		}}},
	}
	r := newTestResolver(t, rec.View(1))
	ix := r.idx.Load()
	for _, c := range []struct {
		name string
		want bool
	}{
		{"in.default.svc.cluster.local.", true},
		{"out.default.svc.cluster.local.", false},
		{"custom.default.svc.cluster.local.", false},
		{"www.corp.example.", true},
		{"far.corp.example.", false},
		{"alias.tools.cluster.local.", true},
	} {
		key, _ := dnswire.ParseName(c.name)
		n := ix.lookup([]byte(key))
		if n == nil {
			n = ix.outsideNode([]byte(key))
		}
		if n == nil || n.cname() == nil {
			t.Fatalf("%s: no CNAME", c.name)
		}
		if got := r.chased(ix, n, n.cname(), []byte(key)); got != c.want {
			t.Errorf("%s: chased %v, want %v", c.name, got, c.want)
		}
		r.forward = dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})
		if !r.chased(ix, n, n.cname(), []byte(key)) {
			t.Errorf("%s: not chased with Forward", c.name)
		}
		r.forward = nil
	}
}
