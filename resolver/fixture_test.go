package resolver

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// testView is the View the table tests answer from.
func testView(index uint64) *fsm.View {
	svcs := []*fsm.Service{
		{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP, ClusterIPs: addrs("10.0.0.10", "fd00::10"),
			Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "dns", Protocol: "UDP", Port: 53}, {Protocol: "TCP", Port: 8080}}},
		{Namespace: "default", Name: "v4only", Type: fsm.TypeNodePort, ClusterIPs: addrs("10.0.0.11")},
		{Namespace: "default", Name: "ext", Type: fsm.TypeExternalName, ExternalName: "example.com"},
		{Namespace: "default", Name: "hl", Type: fsm.TypeClusterIP, Headless: true,
			Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}},
		{Namespace: "default", Name: "hlpub", Type: fsm.TypeClusterIP, Headless: true, PublishNotReadyAddresses: true},
		{Namespace: "default", Name: "empty", Type: fsm.TypeClusterIP, Headless: true},
		{Namespace: "other", Name: "db", Type: fsm.TypeLoadBalancer, ClusterIPs: addrs("fd00::20"),
			Ports: []fsm.Port{{Name: "postgres", Protocol: "TCP", Port: 5432}}},
		{Namespace: "kube-system", Name: "big", Type: fsm.TypeClusterIP, Headless: true},
	}
	eps := []*fsm.EndpointSlice{
		{Namespace: "default", Name: "hl-abc", Service: "hl", Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}},
			Endpoints: []fsm.Endpoint{
				{Addresses: addrs("10.1.0.1"), Hostname: "web-0", Ready: true},
				{Addresses: addrs("10.1.0.2"), Ready: true},
				{Addresses: addrs("10.1.0.3"), Hostname: "web-2"},
			}},
		{Namespace: "default", Name: "hl-v6", Service: "hl", Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}},
			Endpoints: []fsm.Endpoint{{Addresses: addrs("fd00::1:1"), Hostname: "web-0", Ready: true}}},
		{Namespace: "default", Name: "hlpub-x", Service: "hlpub",
			Endpoints: []fsm.Endpoint{{Addresses: addrs("10.2.0.1")}}},
	}
	big := &fsm.EndpointSlice{Namespace: "kube-system", Name: "big-1", Service: "big"}
	for i := range 100 {
		big.Endpoints = append(big.Endpoints, fsm.Endpoint{Addresses: addrs(fmt.Sprintf("10.3.0.%d", i+1)), Ready: true})
	}
	eps = append(eps, big)
	return fsm.NewView(index, svcs, eps)
}

func newTestResolver(t testing.TB, v *fsm.View) *Resolver {
	t.Helper()
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		r.Update(v)
	}
	return r
}

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	tcp    bool
	writes [][]byte
}

func (w *recorder) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *recorder) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}

func (w *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *recorder) Write(b []byte) (int, error) {
	w.writes = append(w.writes, slices.Clone(b))
	return len(b), nil
}

func (*recorder) Close() error        { return nil }
func (*recorder) TsigStatus() error   { return nil }
func (*recorder) TsigTimersOnly(bool) {}
func (*recorder) Hijack()             {}

// exchange runs req through ServeDNS and unpacks the one response.
func exchange(t testing.TB, r *Resolver, req *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	w := &recorder{tcp: tcp}
	r.ServeDNS(w, req)
	if len(w.writes) != 1 {
		t.Fatalf("%d responses written, want 1", len(w.writes))
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(w.writes[0]); err != nil {
		t.Fatalf("unpacking response: %v\n% x", err, w.writes[0])
	}
	if resp.Id != req.Id {
		t.Fatalf("response id %d, want %d", resp.Id, req.Id)
	}
	return resp
}

// rrStrings formats records one per string, fields separated by single
// spaces, sorted.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}
