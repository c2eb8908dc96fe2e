package dnsserver_test

import (
	"encoding/binary"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnsserver/dnsservertest"
	"github.com/kdnsd/kdnsd/resolver"
)

// TestCounters sends queries of every counted type and rcode, over UDP and
// TCP, to servers on real sockets, and checks what Counters counted.
func TestCounters(t *testing.T) {
	const web = "web.default.svc.cluster.local."
	// The upstream: REFUSED for PTR, SERVFAIL for the rest.
	fwd := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		rcode := dns.RcodeServerFailure
		if req.Question[0].Qtype == dns.TypePTR {
			rcode = dns.RcodeRefused
		}
		w.WriteMsg(new(dns.Msg).SetRcode(req, rcode))
	})
	question := func(name string, qtype uint16) *dns.Msg { return new(dns.Msg).SetQuestion(name, qtype) }
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ednsVersion1 := question(web, dns.TypeA)
	ednsVersion1.SetEdns0(1232, false)
	ednsVersion1.IsEdns0().SetVersion(1)
	twoQuestions := question(web, dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	notify := question(web, dns.TypeA)
	notify.Opcode = dns.OpcodeNotify
	response := question(web, dns.TypeA)
	response.Response = true

	cases := []struct {
		name        string
		msg         []byte
		typ, rcode  string // "" rcode: no response
		general     bool   // on the fast path's server, the general path answers it
		headerCheck bool   // refused by the header check: miekg/dns's servers never read its type
	}{
		{name: "A", msg: pack(question(web, dns.TypeA)), typ: "A", rcode: "NOERROR"},
		{name: "AAAA", msg: pack(question(web, dns.TypeAAAA)), typ: "AAAA", rcode: "NOERROR"},
		{name: "SRV", msg: pack(question("_http._tcp."+web, dns.TypeSRV)), typ: "SRV", rcode: "NOERROR"},
		{name: "TXT", msg: pack(question("dns-version.cluster.local.", dns.TypeTXT)), typ: "TXT", rcode: "NOERROR"},
		{name: "MX", msg: pack(question(web, dns.TypeMX)), typ: "other", rcode: "NOERROR"},
		{name: "NXDOMAIN", msg: pack(question("x."+web, dns.TypeA)), typ: "A", rcode: "NXDOMAIN"},
		{name: "forwarded SERVFAIL", msg: pack(question("example.com.", dns.TypeAAAA)), typ: "AAAA", rcode: "SERVFAIL", general: true},
		{name: "forwarded REFUSED", msg: pack(question("4.3.2.1.in-addr.arpa.", dns.TypePTR)), typ: "PTR", rcode: "REFUSED", general: true},
		{name: "BADVERS", msg: pack(ednsVersion1), typ: "A", rcode: "other"},
		{name: "two questions", msg: pack(twoQuestions), typ: "A", rcode: "FORMERR", general: true, headerCheck: true},
		{name: "NOTIFY", msg: pack(notify), typ: "A", rcode: "other", general: true, headerCheck: true},
		{name: "response", msg: pack(response)},
	}

	for _, srv := range []struct {
		name  string
		cfg   dnsserver.Config
		miekg bool
	}{
		{name: "recvmmsg"},
		{name: "recvmsg", cfg: dnsserver.Config{NoBatch: true}},
		{name: "miekg", cfg: dnsserver.Config{MiekgUDP: true}, miekg: true},
	} {
		t.Run(srv.name, func(t *testing.T) {
			cfg := srv.cfg
			cfg.Handler = newTestResolver(t, resolver.Config{Forward: fwd})
			cfg.Counters = new(dnsserver.Counters)
			addr := dnsservertest.Start(t, cfg, 2)

			var want dnsserver.Counts
			count := func(transport int, miekg bool, c int) {
				typ := cases[c].typ
				if miekg && cases[c].headerCheck {
					typ = "other"
				}
				if cases[c].rcode == "" {
					return // dropped unread
				}
				want.Requests[transport][slices.Index(dnsserver.QueryTypes[:], typ)]++
				want.Responses[transport][slices.Index(dnsserver.Rcodes[:], cases[c].rcode)]++
				if transport == 0 && !miekg {
					if cases[c].general {
						want.GeneralPath++
					} else {
						want.FastPath++
					}
				}
			}
			for i, c := range cases {
				if c.rcode == "" {
					// No answer: rawUDP's probe, an A query answered
					// NOERROR by the fast path, says when it was read.
					if b := rawUDP(t, addr, c.msg); b != nil {
						t.Fatalf("%s: answered % x", c.name, b)
					}
					count(0, srv.miekg, 0)
					continue
				}
				for transport, exchange := range []func(*testing.T, string, []byte) []byte{exchangeUDP, exchangeTCP} {
					resp := exchange(t, addr, c.msg)
					if len(resp) < 12 {
						t.Fatalf("%s: short response % x", c.name, resp)
					}
					count(transport, srv.miekg || transport == 1, i)
				}
			}
			if got := cfg.Counters.Counts(); got != want {
				t.Errorf("counts:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// exchangeUDP sends msg from a socket of its own and returns the response
// with its ID.
func exchangeUDP(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang, not slowness
	for {
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the response: %v", err)
		}
		if n >= 12 && binary.BigEndian.Uint16(buf) == binary.BigEndian.Uint16(msg) {
			return buf[:n]
		}
	}
}

// exchangeTCP sends msg on a connection of its own and returns the first
// response.
func exchangeTCP(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var l [2]byte
	if _, err := readFull(c, l[:]); err != nil {
		t.Fatalf("waiting for the response: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := readFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}
