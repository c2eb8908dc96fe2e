package resolver

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServer serves r on a loopback port until the test ends and returns
// the address.
func startServer(t *testing.T, r *Resolver) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pcs, ln, err := listen(ctx, "127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, pcs, ln, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestServeTableOverSockets(t *testing.T) {
	for _, mode := range append(podModes, "insecure-nobatch") {
		r := newModeResolver(t, strings.TrimSuffix(mode, "-nobatch"))
		r.noBatch = strings.HasSuffix(mode, "-nobatch")
		addr := startServer(t, r)
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

// rawUDP sends b, then a good query with an ID of its own (the probe), on
// one socket, and returns the datagram that came before the probe's answer,
// or nil if the probe's answer came first. The server answers the queries
// of one client socket in order (none of these is forwarded), so an answer
// to b comes before the probe's: nil means b got none, with no deadline a
// slow machine could miss.
func rawUDP(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	probe := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	probe.Id = binary.BigEndian.Uint16(b) ^ 0xffff
	pb, err := probe.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range [][]byte{b, pb} {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang, not slowness
	var first []byte
	for {
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the answer to the probe: %v", err)
		}
		if n >= 12 && binary.BigEndian.Uint16(buf) == probe.Id && buf[2]&0x80 != 0 {
			return first
		}
		if first == nil {
			first = buf[:n]
		}
	}
}

func TestMalformedOverUDP(t *testing.T) {
	r := newTestResolver(t, testView(7))
	addr := startServer(t, r)

	good, err := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	withBits := func(bits uint16) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint16(b[2:], bits)
		return b
	}
	twoQ := append(append([]byte(nil), good...), good[12:]...)
	binary.BigEndian.PutUint16(twoQ[4:], 2)

	for _, c := range []struct {
		name  string
		msg   []byte
		rcode int // -1: no response
	}{
		{"good", good, dns.RcodeSuccess},
		{"short", good[:5], -1},
		{"response", withBits(1 << 15), -1},
		{"truncated question", good[:len(good)-3], dns.RcodeFormatError},
		{"two questions", twoQ, dns.RcodeFormatError},
		{"no question", append(withBits(0)[:4], 0, 0, 0, 0, 0, 0, 0, 0), dns.RcodeFormatError},
		{"notify", withBits(dns.OpcodeNotify << 11), dns.RcodeNotImplemented},
		{"update", withBits(dns.OpcodeUpdate << 11), dns.RcodeNotImplemented},
		{"label too long", append(append(append([]byte(nil), good[:12]...), 64), make([]byte, 70)...), dns.RcodeFormatError},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := rawUDP(t, addr, c.msg)
			if c.rcode < 0 {
				if b != nil {
					t.Errorf("got a response: % x", b)
				}
				return
			}
			if b == nil {
				t.Fatalf("no response")
			}
			resp := new(dns.Msg)
			if err := resp.Unpack(b); err != nil {
				// FORMERR replies may echo what could be parsed; the
				// header is what matters.
				if len(b) < 12 {
					t.Fatalf("short response % x", b)
				}
				resp.Rcode = int(b[3] & 0xf)
				resp.Id = binary.BigEndian.Uint16(b)
			}
			if resp.Rcode != c.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[c.rcode])
			}
			if resp.Id != binary.BigEndian.Uint16(c.msg) {
				t.Errorf("id %d", resp.Id)
			}
		})
	}
	// Still serving.
	if b := rawUDP(t, addr, good); b == nil {
		t.Errorf("server stopped answering")
	}
}

func TestListenAndServe(t *testing.T) {
	// Find a port free for both, then serve on it by name.
	pcs, ln, err := listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	pcs[0].Close()
	ln.Close()

	r := newTestResolver(t, testView(3))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- r.ListenAndServe(ctx, addr, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}

	// A second server on the same address fails, naming it.
	err = r.ListenAndServe(context.Background(), addr, func() { t.Error("ready called") })
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("second ListenAndServe on %s: %v", addr, err)
	}
	err = r.ListenAndServe(context.Background(), "no-port", nil)
	if err == nil || !strings.Contains(err.Error(), "no-port") {
		t.Errorf("bad address: %v", err)
	}

	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA), addr)
		if err != nil || len(resp.Answer) != 1 {
			t.Errorf("%s: %v %v", network, resp, err)
		}
	}
	// An idle TCP connection must not hold up shutdown.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	// Both sockets are closed.
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("cluster.local.", dns.TypeSOA), addr); err == nil {
		t.Errorf("TCP still answers after shutdown")
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
