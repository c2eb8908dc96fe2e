package resolver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

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
