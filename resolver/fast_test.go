package resolver

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
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
			fast, ok := r.AnswerUDP(make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut), q)
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
		if b, ok := r.AnswerUDP(make([]byte, 0, 4096), msg); ok {
			t.Errorf("%s: answered by the fast path: % x", name, b)
		}
		r.forward = nil
	}
}

func TestFastPathAllocs(t *testing.T) {
	r := newTestResolver(t, testView(1))
	out := make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
	for _, q := range fastQueries(t) {
		if _, ok := r.AnswerUDP(out, q); !ok {
			continue
		}
		if n := testing.AllocsPerRun(20, func() { r.AnswerUDP(out, q) }); n != 0 {
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
