package dnsserver_test

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnsserver/dnsservertest"
	"github.com/kdnsd/kdnsd/resolver"
)

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
	r := newTestResolver(t, resolver.Config{})
	addr := dnsservertest.Start(t, dnsserver.Config{Handler: r}, 2)

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
	socks, err := dnsserver.Listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := socks.TCP.Addr().String()
	socks.UDP[0].Close()
	socks.TCP.Close()

	r := newTestResolver(t, resolver.Config{})
	cfg := dnsserver.Config{Handler: r}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- dnsserver.ListenAndServe(ctx, addr, cfg, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}

	// A second server on the same address fails, naming it.
	err = dnsserver.ListenAndServe(context.Background(), addr, cfg, func() { t.Error("ready called") })
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("second ListenAndServe on %s: %v", addr, err)
	}
	err = dnsserver.ListenAndServe(context.Background(), "no-port", cfg, nil)
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
