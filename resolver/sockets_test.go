package resolver

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnsserver/dnsservertest"
)

// startServer serves r on a loopback port, with two UDP sockets, until the
// test ends and returns the address.
func startServer(t *testing.T, r *Resolver) string {
	t.Helper()
	return dnsservertest.Start(t, dnsserver.Config{Handler: r}, 2)
}

func TestServeTableOverSockets(t *testing.T) {
	for _, mode := range append(podModes, "insecure-nobatch") {
		r := newModeResolver(t, strings.TrimSuffix(mode, "-nobatch"))
		addr := dnsservertest.Start(t, dnsserver.Config{Handler: r, NoBatch: strings.HasSuffix(mode, "-nobatch")}, 2)
		if pa := addr; !strings.HasPrefix(pa, "127.0.0.1:") {
			t.Fatalf("address %s", pa)
		}
		for _, network := range []string{"udp", "tcp"} {
			t.Run(mode+"/"+network, func(t *testing.T) {
				c := &dns.Client{Net: network, Timeout: 5 * time.Second}
				runTable(t, strings.TrimSuffix(mode, "-nobatch"), network == "tcp", func(t *testing.T, req *dns.Msg) *dns.Msg {
					resp, _, err := c.Exchange(req, addr)
					if err != nil {
						t.Fatal(err)
					}
					return resp
				})
			})
		}
	}
}

func TestTruncationOverSockets(t *testing.T) {
	r := newTestResolver(t, testView(7))
	addr := startServer(t, r)
	req := new(dns.Msg).SetQuestion("big.kube-system.svc.cluster.local.", dns.TypeA)
	udp := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	resp, _, err := udp.Exchange(req, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated {
		t.Errorf("UDP without EDNS: not truncated, %d answers", len(resp.Answer))
	}
	tcp := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	resp, _, err = tcp.Exchange(req, addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 100 {
		t.Errorf("TCP: TC=%v, %d answers", resp.Truncated, len(resp.Answer))
	}
	// A client advertising 4096 octets gets at most 1232 (DNS flag day
	// 2020), with TC.
	req.SetEdns0(4096, false)
	b, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	raw := make([]byte, 65535)
	n, err := c.Write(b)
	if err == nil {
		n, err = c.Read(raw)
	}
	if err != nil {
		t.Fatal(err)
	}
	raw = raw[:n]
	if err := resp.Unpack(raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) > 1232 || !resp.Truncated || len(resp.Answer) == 0 {
		t.Errorf("UDP with EDNS 4096: %d octets, TC=%v, %d answers", len(raw), resp.Truncated, len(resp.Answer))
	}
}

// TestGoResolver: Go's own stub resolver, over a real socket, takes the
// names kdnsd gives endpoints. It rejects a whole SRV or PTR answer ("DNS
// response contained records which contain invalid names") when one target
// is not a valid host name, as an IPv6 endpoint's label ending in a hyphen
// was.
func TestGoResolver(t *testing.T) {
	r := newTestResolver(t, testView(1))
	addr := startServer(t, r)
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const (
		ep6  = "fd00-10-244-6--0.hl6.default.svc.cluster.local."
		ep61 = "fd00-10-244--6-1.hl6.default.svc.cluster.local."
	)
	_, srvs, err := res.LookupSRV(ctx, "http", "tcp", "hl6.default.svc.cluster.local.")
	var targets []string
	for _, s := range srvs {
		targets = append(targets, s.Target)
	}
	slices.Sort(targets)
	if err != nil || !slices.Equal(targets, []string{ep61, ep6}) {
		t.Errorf("LookupSRV: %q %v", targets, err)
	}
	for ip, want := range map[string]string{
		"fd00:10:244:6::":  ep6,
		"fd00:10:244::6:1": ep61,
		"10.244.1.2":       "10-244-1-2.hl.default.svc.cluster.local.",
		"10.244.1.1":       "web-0.hl.default.svc.cluster.local.",
	} {
		if names, err := res.LookupAddr(ctx, ip); err != nil || !slices.Equal(names, []string{want}) {
			t.Errorf("LookupAddr(%s): %q %v, want %s", ip, names, err, want)
		}
	}
	if ips, err := res.LookupNetIP(ctx, "ip6", ep6); err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("fd00:10:244:6::") {
		t.Errorf("LookupNetIP(%s): %v %v", ep6, ips, err)
	}
}
