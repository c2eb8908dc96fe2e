package dnswire

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestNames(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, c := range []struct {
		in   string
		want string // presentation form; "" when invalid
	}{
		{"web.default.svc.cluster.local.", "web.default.svc.cluster.local."},
		{"Web.Default.SVC.cluster.local", "web.default.svc.cluster.local."},
		{"_http._tcp.web.", "_http._tcp.web."},
		{".", "."},
		{"", "."},
		{long + ".x.", long + ".x."},
		{long + "a.x.", ""}, // a label of 64 octets
		{"a..b.", ""},       // an empty label
		{"w\\.eb.x.", ""},   // needs escaping
		{"a b.x.", ""},
		{strings.Repeat(long+".", 4) + "x.", ""},        // 4*64+3 octets: over 255
		{strings.Repeat(long+".", 3) + "abcdefg.", "-"}, // 3*64+8+1 = 201: fits
	} {
		w, ok := ParseName(c.in)
		if c.want == "" {
			if ok {
				t.Errorf("ParseName(%q) = %q, want invalid", c.in, w)
			}
			continue
		}
		want := c.want
		if want == "-" {
			want = dns.CanonicalName(c.in)
		}
		if !ok || Presentation(w) != want {
			t.Errorf("ParseName(%q) = %q %v, want %q", c.in, Presentation(w), ok, want)
			continue
		}
		// The wire form is miekg/dns's, lower-cased.
		buf := make([]byte, 256)
		n, err := dns.PackDomainName(dns.CanonicalName(want), buf, 0, nil, false)
		if err != nil || string(buf[:n]) != w {
			t.Errorf("ParseName(%q): % x, miekg/dns packs % x (%v)", c.in, w, buf[:n], err)
		}
	}
	zone, _ := ParseName("cluster.local.")
	if w, ok := Name(zone, "Web", "default", "svc"); !ok || Presentation(w) != "web.default.svc.cluster.local." {
		t.Errorf("Name: %q %v", Presentation(w), ok)
	}
}

func TestReverseName(t *testing.T) {
	for _, a := range []string{"10.96.0.1", "0.0.0.0", "255.1.2.3", "fd00:10:96::a", "::1", "2001:db8::ab:cdef"} {
		want, err := dns.ReverseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := Presentation(ReverseName(netip.MustParseAddr(a))); got != want {
			t.Errorf("%s: %s, want %s", a, got, want)
		}
	}
}

func TestUDPLimit(t *testing.T) {
	for _, c := range []struct {
		edns bool
		size uint16
		want int
	}{
		{false, 0, 512},
		{false, 4096, 512},
		{true, 0, 512},
		{true, 100, 512},
		{true, 1000, 1000},
		{true, 1232, 1232},
		{true, 4096, 1232}, // DNS flag day 2020
		{true, 65535, 1232},
	} {
		if got := UDPLimit(c.edns, c.size); got != c.want {
			t.Errorf("UDPLimit(%v, %d) = %d, want %d", c.edns, c.size, got, c.want)
		}
	}
}

// respond writes a response to a query for qname (as asked) with sec as
// its answer, within limit, and unpacks it with miekg/dns. It also returns
// the response's length.
func respond(t *testing.T, qname string, qtype uint16, edns bool, sec *Section, limit int, rotate bool) (*dns.Msg, int) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(qname, qtype)
	if edns {
		q.SetEdns0(4096, true)
	}
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var pq Query
	if !ParseQuery(raw, &pq) {
		t.Fatalf("ParseQuery(%s) refused", qname)
	}
	m := Response{Out: make([]byte, HeaderLen, MinOut), ID: pq.ID, Flags: pq.Flags | FlagAA, EDNS: pq.OPT, DO: pq.DO}
	m.Out = append(m.Out, pq.Name...)
	m.Out = binary.BigEndian.AppendUint16(m.Out, pq.Qtype)
	m.Out = binary.BigEndian.AppendUint16(m.Out, pq.Qclass)
	m.QD = 1
	m.AppendAnswer(sec, limit, rotate)
	b := m.Done()
	if len(b) > limit {
		t.Fatalf("%d octets, limit %d", len(b), limit)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(b); err != nil {
		t.Fatalf("unpacking: %v\n% x", err, b)
	}
	if resp.Id != q.Id || !resp.Response || !resp.Authoritative || resp.Question[0] != q.Question[0] {
		t.Fatalf("header or question: %v", resp)
	}
	if edns && (resp.IsEdns0() == nil || resp.IsEdns0().UDPSize() != EDNSPayload || !resp.IsEdns0().Do()) {
		t.Fatalf("OPT: %v", resp.IsEdns0())
	}
	return resp, len(b)
}

func rrs(rr []dns.RR) []string {
	var out []string
	for _, r := range rr {
		if r.Header().Rrtype != dns.TypeOPT {
			out = append(out, strings.Join(strings.Fields(r.String()), " "))
		}
	}
	return out
}

// TestSections: what Builder packs reads back, through miekg/dns, as the
// records written, owner names echoing the question's case, and the
// section is cut to the limit as package resolver's doc says.
func TestSections(t *testing.T) {
	owner, _ := ParseName("web.default.svc.cluster.local.")
	target, _ := ParseName("db.default.svc.cluster.local.")
	b := Builder{TTL: 30}

	b.Begin(owner)
	for i := range 3 {
		b.SRV(owner, 0, 33, uint16(80+i), target)
	}
	b.Addr(true, target, netip.MustParseAddr("10.0.0.1"))
	b.Addr(true, target, netip.MustParseAddr("fd00::1"))
	srv := new(Section)
	b.FinishRotating(srv, TypeSRV)
	resp, _ := respond(t, "WEB.default.svc.cluster.local.", dns.TypeSRV, true, srv, MaxMsgLen, false)
	want := []string{
		"WEB.default.svc.cluster.local. 30 IN SRV 0 33 80 db.default.svc.cluster.local.",
		"WEB.default.svc.cluster.local. 30 IN SRV 0 33 81 db.default.svc.cluster.local.",
		"WEB.default.svc.cluster.local. 30 IN SRV 0 33 82 db.default.svc.cluster.local.",
	}
	if got := rrs(resp.Answer); !slices.Equal(got, want) {
		t.Errorf("answer %q", got)
	}
	if got := rrs(resp.Extra); !slices.Equal(got, []string{"db.default.svc.cluster.local. 30 IN A 10.0.0.1", "db.default.svc.cluster.local. 30 IN AAAA fd00::1"}) {
		t.Errorf("additional %q", got)
	}

	// Rotation: each response starts one record further.
	var firsts []string
	for range 3 {
		resp, _ := respond(t, "web.default.svc.cluster.local.", dns.TypeSRV, false, srv, MaxMsgLen, true)
		firsts = append(firsts, rrs(resp.Answer)[0])
		if len(resp.Answer) != 3 {
			t.Fatalf("rotated answer %v", resp.Answer)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(firsts)))) != 3 {
		t.Errorf("rotation started at %q", firsts)
	}

	// Truncation: without the additional section first, no TC; then the
	// answer records that fit, with TC.
	_, size := respond(t, "web.default.svc.cluster.local.", dns.TypeSRV, false, srv, MaxMsgLen, false)
	noExtra, noExtraSize := respond(t, "web.default.svc.cluster.local.", dns.TypeSRV, false, srv, size-1, false)
	if noExtra.Truncated || len(noExtra.Answer) != 3 || len(noExtra.Extra) != 0 {
		t.Errorf("limit %d: TC %v, %d answers, %d additional", size-1, noExtra.Truncated, len(noExtra.Answer), len(noExtra.Extra))
	}
	two, _ := respond(t, "web.default.svc.cluster.local.", dns.TypeSRV, false, srv, noExtraSize-1, false)
	if !two.Truncated || len(two.Answer) != 2 || len(two.Extra) != 0 {
		t.Errorf("limit %d: TC %v, %d answers, %d additional", noExtraSize-1, two.Truncated, len(two.Answer), len(two.Extra))
	}

	// CNAME, TXT and SOA, compressed or not, read back.
	zone, _ := ParseName("cluster.local.")
	soa := &SOA{MName: "\x02ns\x03dns" + zone, RName: "\x0ahostmaster" + zone, Serial: 7, TTL: 30}
	for _, c := range []struct {
		qtype uint16
		write func()
		want  string
	}{
		{dns.TypeCNAME, func() { b.NameRecord(owner, TypeCNAME, target) }, "Web.default.svc.cluster.local. 30 IN CNAME db.default.svc.cluster.local."},
		{dns.TypeTXT, func() { b.TXT(owner, "1.1.0") }, `Web.default.svc.cluster.local. 30 IN TXT "1.1.0"`},
		{dns.TypeSOA, func() { b.SOA(owner, soa) }, "Web.default.svc.cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30"},
	} {
		b.Begin(owner)
		c.write()
		var sec Section
		b.Finish(&sec, c.qtype)
		resp, _ := respond(t, "Web.default.svc.cluster.local.", c.qtype, false, &sec, 512, false)
		if got := rrs(resp.Answer); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: %q", dns.Type(c.qtype), got)
		}
	}
}

// TestAppendNegative: the SOA of a negative answer reads back whole; its
// owner and the zone in its names point at the question, whose spelling
// they echo.
func TestAppendNegative(t *testing.T) {
	zone, _ := ParseName("cluster.local.")
	soa := &SOA{MName: "\x02ns\x03dns" + zone, RName: "\x0ahostmaster" + zone, Serial: 9, TTL: 30}
	for _, qname := range []string{"nope.Cluster.Local.", "cluster.local."} {
		raw, _ := new(dns.Msg).SetQuestion(qname, dns.TypeA).Pack()
		var q Query
		if !ParseQuery(raw, &q) {
			t.Fatal("ParseQuery refused")
		}
		m := Response{Out: append(make([]byte, HeaderLen, MinOut), raw[HeaderLen:]...), ID: q.ID, Flags: q.Flags, Rcode: dns.RcodeNameError, QD: 1}
		m.AppendNegative(soa, len(zone), len(q.Name))
		resp := new(dns.Msg)
		if err := resp.Unpack(m.Done()); err != nil {
			t.Fatal(err)
		}
		z := strings.TrimPrefix(qname, "nope.")
		want := z + " 30 IN SOA ns.dns." + z + " hostmaster." + z + " 9 7200 1800 86400 30"
		if got := rrs(resp.Ns); resp.Rcode != dns.RcodeNameError || !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %s %q", qname, dns.RcodeToString[resp.Rcode], got)
		}
	}
}

// TestParseQuery: what ParseQuery takes, miekg/dns reads alike; what it
// leaves to the general path, it refuses.
func TestParseQuery(t *testing.T) {
	pack := func(edit func(*dns.Msg)) []byte {
		m := new(dns.Msg).SetQuestion("Web.default.svc.cluster.local.", dns.TypeAAAA)
		m.Id = 4242
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		msg  []byte
		ok   bool
	}{
		{"plain", pack(nil), true},
		{"edns-do", pack(func(m *dns.Msg) { m.SetEdns0(1400, true) }), true},
		{"edns-cookie", pack(func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}), true},
		{"edns-subnet", pack(func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{10, 0, 0, 0}})
		}), false},
		{"response", pack(func(m *dns.Msg) { m.Response = true }), false},
		{"notify", pack(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), false},
		{"two questions", pack(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), false},
		{"escaped label", pack(func(m *dns.Msg) { m.Question[0].Name = `w\.eb.cluster.local.` }), false},
		{"trailing octet", append(pack(nil), 0), false},
		{"short", pack(nil)[:HeaderLen+3], false},
	} {
		var q Query
		ok := ParseQuery(c.msg, &q)
		if ok != c.ok {
			t.Errorf("%s: ParseQuery %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(c.msg); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		name := make([]byte, 256)
		n, _ := dns.PackDomainName(m.Question[0].Name, name, 0, nil, false)
		opt := m.IsEdns0()
		if q.ID != m.Id || string(q.Name) != string(name[:n]) || q.Qtype != m.Question[0].Qtype || q.Qclass != m.Question[0].Qclass ||
			q.Flags != FlagQR|FlagRD || q.OPT != (opt != nil) ||
			opt != nil && (q.UDPSize != opt.UDPSize() || q.DO != opt.Do() || q.Version != opt.Version()) {
			t.Errorf("%s: %+v, miekg/dns reads %v", c.name, q, m)
		}
	}
}

// TestTarget: Target reads back the first name record's target, through
// the pointers into the question and into earlier records.
func TestTarget(t *testing.T) {
	owner, _ := ParseName("4.3.2.10.in-addr.arpa.")
	web, _ := ParseName("web.default.svc.cluster.local.")
	db, _ := ParseName("db.default.svc.cluster.local.")
	inArpa, _ := ParseName("x.in-addr.arpa.") // shares the question's suffix
	b := Builder{TTL: 30}
	for _, c := range []struct {
		name    string
		typ     uint16
		targets []string
		want    string
		ok      bool
	}{
		{"one", TypePTR, []string{web}, web, true},
		{"several", TypePTR, []string{db, web}, db, true},
		{"second compressed against the first", TypePTR, []string{web, db}, web, true},
		{"into the question", TypePTR, []string{inArpa}, inArpa, true},
		{"the owner itself", TypeCNAME, []string{owner}, owner, true},
		{"root", TypeCNAME, []string{"\x00"}, "\x00", true},
		{"none", TypePTR, nil, "", false},
	} {
		b.Begin(owner)
		for _, target := range c.targets {
			b.NameRecord(owner, c.typ, target)
		}
		var sec Section
		b.Finish(&sec, c.typ)
		if got, ok := sec.Target(owner); got != c.want || ok != c.ok {
			t.Errorf("%s: Target = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// TestSectionLayout: a finished Section gives back the answer records'
// ends and the records' length that the Builder wrote, whatever the
// number of answer and additional records, and whether it rotates.
func TestSectionLayout(t *testing.T) {
	owner, _ := ParseName("web.default.svc.cluster.local.")
	target, _ := ParseName("db.default.svc.cluster.local.")
	for _, c := range []struct {
		name       string
		answers    int
		additional int
		rotating   bool
	}{
		{"none", 0, 0, false},
		{"one", 1, 0, false},
		{"one with additional", 1, 1, false},
		{"two", 2, 0, true},
		{"three with additional", 3, 2, true},
		{"one rotating", 1, 0, true}, // nothing to rotate
	} {
		b := Builder{TTL: 30}
		b.Begin(owner)
		for i := range c.answers {
			b.SRV(owner, 0, 10, uint16(80+i), target)
		}
		for i := range c.additional {
			b.Addr(true, target, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
		}
		ends := slices.Clone(b.anEnd)
		records := len(b.buf) - b.start
		var s Section
		if c.rotating {
			b.FinishRotating(&s, TypeSRV)
		} else {
			b.Finish(&s, TypeSRV)
		}
		var got []uint16
		for i := range int(s.an) {
			got = append(got, uint16(s.anEnd(i)))
		}
		if !slices.Equal(got, ends) || s.records() != records || int(s.ar) != c.additional || s.Type() != TypeSRV ||
			s.rotate != (c.rotating && c.answers > 1) || s.wire[:records] != string(b.buf[b.start:b.start+records]) {
			t.Errorf("%s: ends %v, records %d, %d additional, type %d, rotate %v; want %v, %d, %d, %d, %v",
				c.name, got, s.records(), s.ar, s.Type(), s.rotate, ends, records, c.additional, TypeSRV, c.rotating && c.answers > 1)
		}
		if s.anLen() != int(slices.Max(append(ends, 0))) {
			t.Errorf("%s: anLen %d", c.name, s.anLen())
		}
	}
}
