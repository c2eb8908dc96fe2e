package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// variants of a question: how clients ask.
var variants = []struct {
	name string
	edit func(*dns.Msg)
}{
	{"plain", nil},
	{"no-RD-CD", func(m *dns.Msg) { m.RecursionDesired = false; m.CheckingDisabled = true }},
	{"edns-1232-do", func(m *dns.Msg) { m.SetEdns0(1232, true) }},
	{"edns-100", func(m *dns.Msg) { m.SetEdns0(100, false) }},
	{"edns-4096", func(m *dns.Msg) { m.SetEdns0(4096, false) }},
	{"edns-cookie", func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	}},
	{"edns-version-1", func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }},
}

// fastQueries returns the packed queries of every table case and variant,
// with a few more.
func fastQueries(t testing.TB) [][]byte {
	var out [][]byte
	names := []struct {
		name  string
		qtype uint16
	}{
		{"big.kube-system.svc.cluster.local.", dns.TypeA},
		{"web.default.svc.cluster.local.", dns.TypeCAA},
		{"web.default.svc.cluster.local.", dns.TypeAXFR},
	}
	for _, c := range resolvertest.Cases() {
		names = append(names, struct {
			name  string
			qtype uint16
		}{c.Name, c.Type})
	}
	for _, n := range names {
		for _, v := range variants {
			m := new(dns.Msg).SetQuestion(n.name, n.qtype)
			if v.edit != nil {
				v.edit(m)
			}
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// TestFastPathMatchesServeDNS: one source of truth. For every case of the
// table, asked every way, the fast path answers (but for CNAME chases, which
// it hands off), and byte for byte as ServeDNS does.
func TestFastPathMatchesServeDNS(t *testing.T) {
	for _, mode := range podModes {
		r := newModeResolver(t, mode)
		r.noRotate = true
		handled, general := 0, 0
		for _, q := range fastQueries(t) {
			req := new(dns.Msg)
			if err := req.Unpack(q); err != nil {
				t.Fatal(err)
			}
			w := dnswritertest.New(false)
			r.ServeDNS(w, req)
			fast, ok := r.fastReply(make([]byte, 0, ednsPayload+minOut), q)
			if !ok {
				general++
				// Escaped names, and CNAME chains, are the general path's.
				if _, act := r.reply(nil, req, false); !strings.Contains(req.Question[0].Name, `\`) && act != actChase {
					t.Errorf("%s: left to the general path", req.Question[0].String())
				}
				continue
			}
			handled++
			if len(w.Replies()) != 1 || !bytes.Equal(fast, w.Replies()[0]) {
				t.Errorf("%s %v: fast path differs from ServeDNS:\nfast    % x\ngeneral % x", mode, req, fast, w.Replies())
			}
		}
		t.Logf("%s: %d queries answered by the fast path, %d left to the general path", mode, handled, general)
	}
}

func TestFastPathLeavesToGeneralPath(t *testing.T) {
	r := newTestResolver(t, testView(1))
	good, _ := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA).Pack()
	edited := func(edit func(*dns.Msg)) []byte {
		m := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
		edit(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, msg := range map[string][]byte{
		"short":     good[:11],
		"response":  edited(func(m *dns.Msg) { m.Response = true }),
		"notify":    edited(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		"two q":     edited(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }),
		"escape":    edited(func(m *dns.Msg) { m.Question[0].Name = `w\.eb.default.svc.cluster.local.` }),
		"trailing":  append(append([]byte(nil), good...), 0),
		"truncated": good[:len(good)-1],
		"two OPT":   edited(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra = append(m.Extra, m.Extra[0]) }),
		"answer": edited(func(m *dns.Msg) {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeA, Class: 1}})
		}),
		"ECS": edited(func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: 8, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 0, 0, 0)}}
		}),
		"outside zone": edited(func(m *dns.Msg) { m.Question[0].Name = "example.com." }),
	} {
		if name == "outside zone" {
			r.forward = dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})
		}
		if b, ok := r.fastReply(make([]byte, 0, 4096), msg); ok {
			t.Errorf("%s: answered by the fast path: % x", name, b)
		}
		r.forward = nil
	}
}

func TestFastPathAllocs(t *testing.T) {
	r := newTestResolver(t, testView(1))
	out := make([]byte, 0, ednsPayload+minOut)
	for _, q := range fastQueries(t) {
		if _, ok := r.fastReply(out, q); !ok {
			continue
		}
		if n := testing.AllocsPerRun(20, func() { r.fastReply(out, q) }); n != 0 {
			req := new(dns.Msg)
			req.Unpack(q)
			t.Errorf("%v: %v allocations", req.Question, n)
		}
	}
}

// TestRotation: several A, AAAA or SRV records start one record further on
// each response; every rotation is a valid message with the same records.
func TestRotation(t *testing.T) {
	r := newTestResolver(t, testView(1))
	for _, c := range []struct {
		name  string
		qtype uint16
		n     int
		tcp   bool
	}{
		{"hl.default.svc.cluster.local.", dns.TypeA, 2, false},
		{"_http._tcp.hl.default.svc.cluster.local.", dns.TypeSRV, 2, false},
		{"big.kube-system.svc.cluster.local.", dns.TypeA, resolvertest.BigEndpoints, true},
		{"big.kube-system.svc.cluster.local.", dns.TypeA, resolvertest.BigEndpoints, false}, // truncated
	} {
		req := new(dns.Msg).SetQuestion(c.name, c.qtype)
		firsts := map[string]bool{}
		var want []string
		for i := range c.n {
			resp := exchange(t, r, req, c.tcp)
			if len(resp.Answer) == 0 {
				t.Fatalf("%s: no answer", c.name)
			}
			firsts[resp.Answer[0].String()] = true
			got := rrStrings(resp.Answer)
			if resp.Truncated {
				// Whole records, in rotated order.
				if len(got) >= c.n {
					t.Errorf("%s: truncated with all %d records", c.name, len(got))
				}
				continue
			}
			extra := rrStrings(resp.Extra)
			if i == 0 {
				want = append(got, extra...)
			} else if g := append(got, extra...); !slicesEqual(g, want) {
				t.Errorf("%s: rotation %d has other records:\n%q\n%q", c.name, i, g, want)
			}
		}
		if len(firsts) != c.n {
			t.Errorf("%s: %d first records in %d responses, want every one", c.name, len(firsts), c.n)
		}
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestParseDashed(t *testing.T) {
	check := func(label string) {
		t.Helper()
		got, ok := parseDashed([]byte(strings.ToLower(label)))
		// CoreDNS's rule, then the standard parser.
		s := label
		if strings.Count(label, "-") == 3 && !strings.Contains(label, "--") {
			s = strings.ReplaceAll(s, "-", ".")
		} else {
			s = strings.ReplaceAll(s, "-", ":")
		}
		want, err := netip.ParseAddr(s)
		if ok != (err == nil) || ok && got != want {
			t.Errorf("%q: %v %v, want %v %v", label, got, ok, want, err)
		}
	}
	for _, l := range []string{"10-1-2-3", "0-0-0-0", "255-255-255-255", "256-1-1-1", "01-1-1-1", "1-2-3", "1-2-3-4-",
		"-1-2-3", "1--2-3", "1-2-3-4-5", "fd00--1", "FD00--1", "--", "--1", "1--", "1-2-3-4-5-6-7-8", "1-2-3-4-5-6-7-8-9",
		"1-2-3-4-5-6-7--8", "1-2-3-4-5-6-7-8--", "1---2", "12345--1", "g--1", "fd00-0-0-0-0-0-0-1", "1-2-3-4--", "a", "", "-"} {
		check(l)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b [16]byte
		for i := range b {
			if rng.IntN(3) > 0 {
				b[i] = byte(rng.Uint32())
			}
		}
		a := netip.AddrFrom16(b)
		if rng.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte(b[:4]))
		}
		check(dashed(a))
		if a.Is6() {
			check(strings.ReplaceAll(a.StringExpanded(), ":", "-"))
		}
	}
}

func TestNameServerAddresses(t *testing.T) {
	nsA := "ns.dns.cluster.local."
	q := func(r *Resolver, name string, qtype uint16) *dns.Msg {
		return exchange(t, r, new(dns.Msg).SetQuestion(name, qtype), false)
	}
	// Configured: they win over kube-dns.
	r, err := New(Config{NSAddrs: addrs("10.96.0.53", "fd00:10:96::53", "10.96.0.53")})
	if err != nil {
		t.Fatal(err)
	}
	r.Update(testView(1))
	if got := rrStrings(q(r, nsA, dns.TypeA).Answer); !slicesEqual(got, []string{nsA + " 30 IN A 10.96.0.53"}) {
		t.Errorf("A %q", got)
	}
	if got := rrStrings(q(r, nsA, dns.TypeAAAA).Answer); !slicesEqual(got, []string{nsA + " 30 IN AAAA fd00:10:96::53"}) {
		t.Errorf("AAAA %q", got)
	}
	resp := q(r, "cluster.local.", dns.TypeNS)
	if got := rrStrings(resp.Extra); !slicesEqual(got, []string{nsA + " 30 IN A 10.96.0.53", nsA + " 30 IN AAAA fd00:10:96::53"}) {
		t.Errorf("NS glue %q", got)
	}
	// Neither: the name exists, without addresses.
	r = newTestResolver(t, fsm.NewView(1, nil, nil))
	resp = q(r, nsA, dns.TypeA)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 || len(resp.Ns) != 1 {
		t.Errorf("no addresses: %v", resp)
	}
	if resp := q(r, "cluster.local.", dns.TypeNS); len(resp.Answer) != 1 || len(resp.Extra) != 0 {
		t.Errorf("NS without addresses: %v", resp)
	}
}

func TestNewPodMode(t *testing.T) {
	if _, err := New(Config{PodMode: "secure"}); err == nil || !strings.Contains(err.Error(), "pod mode") {
		t.Errorf("pod mode secure: %v", err)
	}
}

// TestTCPPipelining sends three queries on one TCP connection before reading
// any answer.
func TestTCPPipelining(t *testing.T) {
	r := newTestResolver(t, testView(1))
	addr := startServer(t, r)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := []string{"web.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.", "nope.cluster.local."}
	var buf []byte
	for i, name := range names {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Id = uint16(100 + i)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(b)))
		buf = append(buf, b...)
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := map[uint16]*dns.Msg{}
	for range names {
		var l [2]byte
		if _, err := readFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := readFull(c, b); err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		got[m.Id] = m
	}
	for i, name := range names {
		m := got[uint16(100+i)]
		if m == nil || m.Question[0].Name != name {
			t.Errorf("query %d (%s): %v", i, name, m)
		}
	}
	if len(got[100].Answer) != 1 || len(got[101].Answer) != 1 || got[102].Rcode != dns.RcodeNameError {
		t.Errorf("answers %v", got)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestAnswerFromQueriedAddress: on a socket of the unspecified address, the
// answer leaves from the address the query was sent to (a client's
// connected socket accepts nothing else).
func TestAnswerFromQueriedAddress(t *testing.T) {
	for _, c := range []struct {
		listen  string
		dst     []string
		noBatch bool
	}{
		{"0.0.0.0:0", []string{"127.0.0.1", "127.0.0.2"}, false},
		{"[::]:0", []string{"::1", "127.0.0.2", "127.0.0.1"}, false},
		{"0.0.0.0:0", []string{"127.0.0.2"}, true},
		{"[::]:0", []string{"::1", "127.0.0.2"}, true},
	} {
		t.Run(fmt.Sprintf("%s batch=%v", c.listen, !c.noBatch), func(t *testing.T) {
			r := newTestResolver(t, testView(1))
			r.noBatch = c.noBatch
			ctx := t.Context()
			pcs, ln, err := listen(ctx, c.listen, 2)
			if err != nil {
				t.Skipf("%s: %v", c.listen, err) // e.g. no IPv6: the other cases still run
			}
			port := ln.Addr().(*net.TCPAddr).Port
			done := make(chan error, 1)
			ready := make(chan struct{})
			sctx, cancel := context.WithCancel(ctx)
			go func() { done <- r.serve(sctx, pcs, ln, func() { close(ready) }) }()
			<-ready
			for _, dst := range c.dst {
				for _, name := range []string{"web.default.svc.cluster.local.", "w\\.eb.cluster.local."} { // fast and general paths
					cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
					resp, _, err := cl.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), net.JoinHostPort(dst, fmt.Sprint(port)))
					if err != nil {
						t.Errorf("%s → %s %s: %v", c.listen, dst, name, err)
					} else if resp.Rcode == dns.RcodeServerFailure {
						t.Errorf("%s → %s: %v", c.listen, dst, resp)
					}
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// TestForwardFromFastServer: queries the resolver does not answer reach
// Config.Forward through the UDP server's general path.
func TestForwardFromFastServer(t *testing.T) {
	fwd := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{"forwarded"}})
		time.Sleep(10 * time.Millisecond)
		w.WriteMsg(m)
	})
	r, err := New(Config{Forward: fwd})
	if err != nil {
		t.Fatal(err)
	}
	r.Update(testView(1))
	addr := startServer(t, r)
	cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, c := range []struct {
		name  string
		qtype uint16
		fwd   bool
	}{
		{"example.com.", dns.TypeA, true},
		{"3.1.244.10.in-addr.arpa.", dns.TypePTR, true}, // a not-ready endpoint
		{"110.0.96.10.in-addr.arpa.", dns.TypePTR, false},
		{"web.default.svc.cluster.local.", dns.TypeA, false},
	} {
		resp, _, err := cl.Exchange(new(dns.Msg).SetQuestion(c.name, c.qtype), addr)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, isTXT := firstRR(resp).(*dns.TXT)
		if isTXT != c.fwd {
			t.Errorf("%s: forwarded %v, want %v: %v", c.name, isTXT, c.fwd, resp)
		}
	}
}

func firstRR(m *dns.Msg) dns.RR {
	if len(m.Answer) == 0 {
		return nil
	}
	return m.Answer[0]
}

// TestEndpointLabel: the label of an endpoint without hostname is a valid
// host name label (RFC 1123: letters, digits, inner hyphens), CoreDNS's name
// where that is valid, and reads back as the address.
func TestEndpointLabel(t *testing.T) {
	for addr, want := range map[string]string{
		"10.244.1.2":             "10-244-1-2",
		"fd00:10:244::1:1":       "fd00-10-244--1-1",
		"fd00:244:6::":           "fd00-244-6--0", // CoreDNS's
		"fd00::":                 "fd00--0",
		"::a01:203":              "0--a01-203", // CoreDNS: --a01-203
		"::":                     "0--0",
		"1:2:3:4:5:6:7:8":        "1-2-3-4-5-6-7-8",
		"2001:db8:0:0:1:0:0:0":   "2001-db8-0-0-1--0",
		"2001:db8::aaaa:0:0:0:0": "2001-db8-0-aaaa--0",
	} {
		a := netip.MustParseAddr(addr)
		got := endpointLabel(a)
		if got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
		if _, ok := dns.IsDomainName(got); !ok || got[0] == '-' || got[len(got)-1] == '-' || strings.Trim(got, "0123456789abcdef-") != "" {
			t.Errorf("%s: %q is no host name label", addr, got)
		}
		if back, ok := parseDashed([]byte(got)); !ok || back != a {
			t.Errorf("%s: %q reads as %v %v", addr, got, back, ok)
		}
	}
}
