package resolvertest

import (
	"fmt"
	"net/netip"

	"github.com/kdnsd/kdnsd/fsm"
)

// BigView returns a View of n services in n/50 namespaces: four in five
// ClusterIP services with two named ports, one in five headless services with
// a slice of five endpoints, two of them with hostnames: the
// cluster that benchmarks and load tests ask about.
func BigView(n int, index uint64) *fsm.View {
	svcs := make([]*fsm.Service, 0, n)
	var eps []*fsm.EndpointSlice
	for i := range n {
		ns := fmt.Sprintf("ns-%d", i/50)
		name := fmt.Sprintf("svc-%d", i)
		s := &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP,
			Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "metrics", Protocol: "TCP", Port: 9090}}}
		if i%5 == 4 {
			s.Headless = true
			sl := &fsm.EndpointSlice{Namespace: ns, Name: name + "-abcde", Service: name,
				Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}, {Name: "metrics", Protocol: "TCP", Port: 9090}}}
			for j := range 5 {
				ep := fsm.Endpoint{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j + 1)})}, Ready: true}
				if j < 2 {
					ep.Hostname = fmt.Sprintf("%s-%d", name, j)
				}
				sl.Endpoints = append(sl.Endpoints, ep)
			}
			eps = append(eps, sl)
		} else {
			s.ClusterIPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})}
		}
		svcs = append(svcs, s)
	}
	return fsm.NewView(index, svcs, eps)
}
