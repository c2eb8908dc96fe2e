package resolver

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/forward"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// chaseView is the fixture with more ExternalName services: targets outside
// the zone that the test upstream knows, a chain from the zone out of it,
// and a chain longer than maxChase.
func chaseView() *fsm.View {
	svcs, eps := resolvertest.Fixture()
	ext := func(name, target string) *fsm.Service {
		return &fsm.Service{Namespace: "default", Name: name, Type: fsm.TypeExternalName, ExternalName: target}
	}
	svcs = append(svcs,
		ext("cdn", "cdn.example.com"),               // a CNAME chain upstream
		ext("gone", "gone.example.com"),             // NXDOMAIN upstream
		ext("big-ext", "big.example.com"),           // many A records upstream
		ext("poison", "poison.example.com"),         // records off the chain upstream
		ext("via", "ext.default.svc.cluster.local"), // in the zone, then out
	)
	for i := range 12 {
		svcs = append(svcs, ext(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d.default.svc.cluster.local", i+1)))
	}
	return fsm.NewView(1, svcs, eps)
}

// testUpstream serves a few names outside the zone on loopback, UDP and
// TCP, and counts the queries it gets.
type testUpstream struct {
	addr    string
	queries atomic.Int32
}

func startUpstream(t *testing.T) *testUpstream {
	t.Helper()
	u := &testUpstream{}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	soa := rr("example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 60")
	big := []dns.RR{}
	for i := range 60 {
		big = append(big, rr(fmt.Sprintf("big.example.com. 300 IN A 192.0.2.%d", i+1)))
	}
	records := map[string][]dns.RR{
		"example.com. A":    {rr("example.com. 300 IN A 192.0.2.1"), rr("example.com. 300 IN A 192.0.2.2")},
		"example.com. AAAA": {rr("example.com. 300 IN AAAA 2001:db8::1")},
		"cdn.example.com. A": {rr("cdn.example.com. 300 IN CNAME edge.example.net."),
			rr("edge.example.net. 60 IN A 198.51.100.7")},
		"big.example.com. A": big,
		"poison.example.com. A": {rr("web.default.svc.cluster.local. 300 IN A 6.6.6.6"),
			rr("poison.example.com. 300 IN A 192.0.2.9"), rr("other.example.org. 300 IN A 6.6.6.7")},
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg).SetReply(req)
		m.RecursionAvailable = true
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		switch {
		case records[name+" "+dns.TypeToString[q.Qtype]] != nil:
			m.Answer = records[name+" "+dns.TypeToString[q.Qtype]]
		case name == "gone.example.com.":
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa}
		default:
			m.Ns = []dns.RR{soa} // NODATA
		}
		if o := req.IsEdns0(); o != nil {
			m.SetEdns0(o.UDPSize(), false)
		}
		if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
			size := dns.MinMsgSize
			if o := req.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	// A UDP port whose TCP twin is free too; other test packages take
	// ports at the same time, so try again when it is not.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 20 {
				t.Fatal(err)
			}
		}
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	u.addr = pc.LocalAddr().String()
	return u
}

// chaseResolver serves chaseView with fwd as Config.Forward.
func chaseResolver(t *testing.T, fwd dns.Handler) *Resolver {
	t.Helper()
	r, err := New(Config{Forward: fwd})
	if err != nil {
		t.Fatal(err)
	}
	r.Update(chaseView())
	return r
}

func forwarder(t *testing.T, upstream string, timeout time.Duration) *forward.Forwarder {
	t.Helper()
	f, err := forward.New(forward.Config{Upstreams: []string{upstream}, Timeout: timeout, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// answerOf returns the records of a section, one canonical string each, in
// the order they came.
func answerOf(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, resolvertest.Canonical(rr))
		}
	}
	return out
}

// sortedAfterFirst sorts all records but the first n, whose order matters
// (the CNAME chain); the rest may come in any order.
func sortedAfterFirst(s []string, n int) []string {
	s = slices.Clone(s)
	if len(s) > n {
		slices.Sort(s[n:])
	}
	return s
}

// checkReply checks the header, rcode and answer of a chased response;
// chain is how many leading answer records are in a fixed order.
func checkReply(t *testing.T, label string, resp *dns.Msg, q dns.Question, rcode int, chain int, answer []string) {
	t.Helper()
	if resp.Rcode != rcode || !resp.Response || !resp.Authoritative || resp.RecursionAvailable || resp.Truncated ||
		len(resp.Question) != 1 || resp.Question[0] != q {
		t.Errorf("%s: header %+v rcode %s question %v", label, resp.MsgHdr, dns.RcodeToString[resp.Rcode], resp.Question)
	}
	if got := sortedAfterFirst(answerOf(resp.Answer), chain); !slices.Equal(got, sortedAfterFirst(answer, chain)) {
		t.Errorf("%s: answer\n  got  %q\n  want %q", label, got, answer)
	}
}

// TestChaseThroughForward: A and AAAA queries for an ExternalName service
// get the CNAME and the target's records from the upstream, through the
// real forward package, over the UDP fast-path socket, TCP and ServeDNS.
func TestChaseThroughForward(t *testing.T) {
	up := startUpstream(t)
	r := chaseResolver(t, forwarder(t, up.addr, time.Second))
	addr := startServer(t, r)

	const ext = "ext.default.svc.cluster.local."
	type want struct {
		rcode     int
		chain     int // leading records in a fixed order
		answer    []string
		authority []string
	}
	soa := "example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 60"
	cases := []struct {
		name  string
		qtype uint16
		edns  bool
		want  want
	}{
		{ext, dns.TypeA, false, want{chain: 1, answer: []string{
			ext + " 30 IN CNAME example.com.", "example.com. 300 IN A 192.0.2.1", "example.com. 300 IN A 192.0.2.2"}}},
		{ext, dns.TypeAAAA, true, want{chain: 1, answer: []string{
			ext + " 30 IN CNAME example.com.", "example.com. 300 IN AAAA 2001:db8::1"}}},
		{"Ext.Default.svc.cluster.local.", dns.TypeA, false, want{chain: 1, answer: []string{
			"Ext.Default.svc.cluster.local. 30 IN CNAME example.com.", "example.com. 300 IN A 192.0.2.1", "example.com. 300 IN A 192.0.2.2"}}},
		{ext, dns.TypeTXT, false, want{answer: []string{ext + " 30 IN CNAME example.com."}, authority: []string{soa}}},
		{ext, dns.TypeCNAME, false, want{answer: []string{ext + " 30 IN CNAME example.com."}}},
		{ext, dns.TypeANY, false, want{answer: []string{ext + " 30 IN CNAME example.com."}}},
		{"cdn.default.svc.cluster.local.", dns.TypeA, false, want{chain: 3, answer: []string{
			"cdn.default.svc.cluster.local. 30 IN CNAME cdn.example.com.",
			// Forward cuts every TTL to the smallest.
			"cdn.example.com. 60 IN CNAME edge.example.net.", "edge.example.net. 60 IN A 198.51.100.7"}}},
		{"gone.default.svc.cluster.local.", dns.TypeA, true, want{rcode: dns.RcodeNameError,
			answer: []string{"gone.default.svc.cluster.local. 30 IN CNAME gone.example.com."}, authority: []string{soa}}},
		{"poison.default.svc.cluster.local.", dns.TypeA, false, want{chain: 1, answer: []string{
			"poison.default.svc.cluster.local. 30 IN CNAME poison.example.com.", "poison.example.com. 300 IN A 192.0.2.9"}}},
		{"via.default.svc.cluster.local.", dns.TypeA, false, want{chain: 2, answer: []string{
			"via.default.svc.cluster.local. 30 IN CNAME " + ext, ext + " 30 IN CNAME example.com.",
			"example.com. 300 IN A 192.0.2.1", "example.com. 300 IN A 192.0.2.2"}}},
		{"alias.default.svc.cluster.local.", dns.TypeA, false, want{chain: 2, answer: []string{
			"alias.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. 30 IN A 10.96.0.110"}}},
	}
	udp := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	tcp := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	for _, c := range cases {
		req := new(dns.Msg).SetQuestion(c.name, c.qtype)
		if c.edns {
			req.SetEdns0(1232, false)
		}
		for _, via := range []string{"udp", "tcp", "servedns"} {
			label := via + " " + req.Question[0].String()
			var resp *dns.Msg
			var err error
			switch via {
			case "udp":
				resp, _, err = udp.Exchange(req, addr)
			case "tcp":
				resp, _, err = tcp.Exchange(req, addr)
			default:
				resp = exchange(t, r, req, false)
			}
			if err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			checkReply(t, label, resp, req.Question[0], c.want.rcode, c.want.chain, c.want.answer)
			if got := answerOf(resp.Ns); !slices.Equal(got, c.want.authority) && !(len(got) == 0 && c.want.authority == nil) {
				t.Errorf("%s: authority %q, want %q", label, got, c.want.authority)
			}
			if (resp.IsEdns0() != nil) != c.edns {
				t.Errorf("%s: OPT %v, asked with EDNS %v", label, resp.IsEdns0(), c.edns)
			}
		}
	}
	// The chain in the zone never reaches the upstream.
	before := up.queries.Load()
	exchange(t, r, new(dns.Msg).SetQuestion("loop-a.default.svc.cluster.local.", dns.TypeA), false)
	exchange(t, r, new(dns.Msg).SetQuestion("chain.default.svc.cluster.local.", dns.TypeA), false)
	if n := up.queries.Load() - before; n != 0 {
		t.Errorf("%d upstream queries for chains in the zone", n)
	}
}

// TestChaseTruncation: a chased answer fits the client's UDP payload size,
// TC set when records were left out; over TCP it is whole.
func TestChaseTruncation(t *testing.T) {
	up := startUpstream(t)
	r := chaseResolver(t, forwarder(t, up.addr, time.Second))
	addr := startServer(t, r)
	req := new(dns.Msg).SetQuestion("big-ext.default.svc.cluster.local.", dns.TypeA)
	for _, c := range []struct {
		net  string
		edns uint16
		max  int
		tc   bool
	}{{"udp", 0, 512, true}, {"udp", 1232, 1232, false}, {"tcp", 0, 65535, false}} {
		req := req.Copy()
		if c.edns > 0 {
			req.SetEdns0(c.edns, false)
		}
		cl := &dns.Client{Net: c.net, Timeout: 5 * time.Second, UDPSize: 65535}
		resp, _, err := cl.Exchange(req, addr)
		if err != nil {
			t.Fatalf("%s %d: %v", c.net, c.edns, err)
		}
		want := 61
		if c.tc {
			want = len(resp.Answer)
		}
		resp.Compress = true // as sent
		if resp.Len() > c.max || resp.Truncated != c.tc || len(resp.Answer) != want ||
			resp.Answer[0].Header().Rrtype != dns.TypeCNAME {
			t.Errorf("%s %d: %d octets, TC %v, %d answers", c.net, c.edns, resp.Len(), resp.Truncated, len(resp.Answer))
		}
	}
}

// TestChaseForwardFails: when Forward cannot answer (upstream port closed,
// upstream silent, a handler that writes nothing, one that answers
// SERVFAIL, one that hangs), the CNAME comes alone, NOERROR. The silent
// upstream and the hanging handler keep Forward busy for longer than the
// client waits, so that an answer at all shows the chase gave up after its
// own timeout, however slow the machine.
func TestChaseForwardFails(t *testing.T) {
	closed := func() string { // a loopback UDP port with nothing behind it
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := pc.LocalAddr().String()
		pc.Close()
		return a
	}()
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	release := make(chan struct{}) // ends the hanging handler's wait
	t.Cleanup(func() { close(release) })
	const timeout = 300 * time.Millisecond
	for _, c := range []struct {
		name string
		fwd  dns.Handler
	}{
		{"closed port", forwarder(t, closed, timeout)},
		{"silent upstream", forwarder(t, silent.LocalAddr().String(), time.Hour)},
		{"no write", dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})},
		{"servfail", dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
		})},
		{"hangs", dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) { <-release })},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := chaseResolver(t, c.fwd)
			r.chaseTimeout = timeout
			addr := startServer(t, r)
			for _, network := range []string{"udp", "tcp"} {
				for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
					req := new(dns.Msg).SetQuestion("ext.default.svc.cluster.local.", qtype)
					resp, _, err := (&dns.Client{Net: network, Timeout: 30 * time.Second}).Exchange(req, addr)
					if err != nil {
						t.Fatalf("%s: %v", network, err)
					}
					label := network + " " + req.Question[0].String()
					checkReply(t, label, resp, req.Question[0], dns.RcodeSuccess, 1,
						[]string{"ext.default.svc.cluster.local. 30 IN CNAME example.com."})
					if len(resp.Ns) != 0 {
						t.Errorf("%s: authority %v", label, resp.Ns)
					}
				}
			}
		})
	}
}

// TestChaseKeepsFastPathFree: while a chase waits on a slow Forward, the
// UDP socket it came in on goes on answering.
func TestChaseKeepsFastPathFree(t *testing.T) {
	release := make(chan struct{})
	fwd := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		<-release
		m := new(dns.Msg).SetReply(req)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
			A: net.IPv4(192, 0, 2, 1)}}
		w.WriteMsg(m)
	})
	r := chaseResolver(t, fwd)
	addr := startServer(t, r)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	send := func(name string, id uint16) {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Id = id
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() *dns.Msg {
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b[:n]); err != nil {
			t.Fatal(err)
		}
		return m
	}
	send("ext.default.svc.cluster.local.", 1)
	send("web.default.svc.cluster.local.", 2)
	if m := read(); m.Id != 2 {
		t.Fatalf("first response is to query %d, want the fast path's (2)", m.Id)
	}
	close(release)
	if m := read(); m.Id != 1 || len(m.Answer) != 2 {
		t.Errorf("chased response: %v", m)
	}
}

// TestChaseLoopsAndDepth: chains in the zone end at a loop, and after
// maxChase targets, with or without Forward, which they never reach.
func TestChaseLoopsAndDepth(t *testing.T) {
	var asked atomic.Int32
	fwd := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		asked.Add(1)
		w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
	})
	for _, f := range []dns.Handler{nil, fwd} {
		r := chaseResolver(t, f)
		resp := exchange(t, r, new(dns.Msg).SetQuestion("loop-b.default.svc.cluster.local.", dns.TypeAAAA), true)
		checkReply(t, "loop", resp, resp.Question[0], dns.RcodeSuccess, 2, []string{
			"loop-b.default.svc.cluster.local. 30 IN CNAME loop-a.default.svc.cluster.local.",
			"loop-a.default.svc.cluster.local. 30 IN CNAME loop-b.default.svc.cluster.local."})
		resp = exchange(t, r, new(dns.Msg).SetQuestion("c0.default.svc.cluster.local.", dns.TypeA), false)
		var want []string
		for i := range maxChase + 1 {
			want = append(want, fmt.Sprintf("c%d.default.svc.cluster.local. 30 IN CNAME c%d.default.svc.cluster.local.", i, i+1))
		}
		checkReply(t, "long chain", resp, resp.Question[0], dns.RcodeSuccess, len(want), want)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("Forward asked %d times", n)
	}
}

// TestChaseWithoutForward: without Forward, targets outside the zone are
// not chased, and the fast path answers those queries itself; chains in
// the zone are the general path's.
func TestChaseWithoutForward(t *testing.T) {
	r := chaseResolver(t, nil)
	for _, c := range []struct {
		name string
		fast bool
	}{
		{"ext.default.svc.cluster.local.", true},
		{"cdn.default.svc.cluster.local.", true},
		{"alias.default.svc.cluster.local.", false},
		{"via.default.svc.cluster.local.", false},
	} {
		q, _ := new(dns.Msg).SetQuestion(c.name, dns.TypeA).Pack()
		if _, ok := r.AnswerUDP(make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut), q); ok != c.fast {
			t.Errorf("%s: fast path answers %v, want %v", c.name, ok, c.fast)
		}
	}
	resp := exchange(t, r, new(dns.Msg).SetQuestion("via.default.svc.cluster.local.", dns.TypeA), false)
	checkReply(t, "via", resp, resp.Question[0], dns.RcodeSuccess, 2, []string{
		"via.default.svc.cluster.local. 30 IN CNAME ext.default.svc.cluster.local.",
		"ext.default.svc.cluster.local. 30 IN CNAME example.com."})
}

// TestTableWithForward: the cases that hold with a Forward handler hold
// whether its upstream answers (the test upstream, which knows example.com)
// or is down (a closed port, as in the cluster test), over ServeDNS, the
// UDP fast-path socket and TCP.
func TestTableWithForward(t *testing.T) {
	up := startUpstream(t)
	closed := func() string {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}()
	cases := resolvertest.Select(resolvertest.Cases(), resolvertest.Config{PodMode: PodInsecure, Forward: true})
	for _, u := range []struct{ name, addr string }{{"upstream", up.addr}, {"upstream-down", closed}} {
		r, err := New(Config{Forward: forwarder(t, u.addr, time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		r.Update(testView(7))
		addr := startServer(t, r)
		for _, via := range []string{"servedns", "udp", "tcp"} {
			t.Run(u.name+"/"+via, func(t *testing.T) {
				cl := &dns.Client{Net: via, Timeout: 5 * time.Second}
				for _, c := range cases {
					if !c.Holds(resolvertest.Config{PodMode: PodInsecure, Forward: true, TCP: via == "tcp"}) {
						continue
					}
					req := c.Request()
					var resp *dns.Msg
					if via == "servedns" {
						resp = exchange(t, r, req, false)
					} else if resp, _, err = cl.Exchange(req, addr); err != nil {
						t.Fatalf("%s: %v", c.String(), err)
					}
					if err := resolvertest.Check(resp, c); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
}
