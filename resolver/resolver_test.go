package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
	"github.com/kdnsd/kdnsd/test/wait"
)

// podModes are the configurations the table runs under.
var podModes = []string{PodInsecure, PodVerified, PodDisabled}

// newModeResolver returns a resolver of the fixture in pod mode mode.
func newModeResolver(t testing.TB, mode string) *Resolver {
	t.Helper()
	r, err := New(Config{PodMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	r.Update(testView(7))
	return r
}

// runTable checks every resolvertest case that holds for mode and the
// transport through ex.
func runTable(t *testing.T, mode string, tcp bool, ex func(t *testing.T, req *dns.Msg) *dns.Msg) {
	cases := resolvertest.Select(resolvertest.Cases(), resolvertest.Config{PodMode: mode, TCP: tcp})
	if len(cases) < 80 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			for _, rd := range []bool{true, false} {
				req := c.Request()
				req.RecursionDesired = rd
				resp := ex(t, req)
				if err := resolvertest.Check(resp, c); err != nil {
					t.Error(err)
				}
				if resp.RecursionDesired != rd || resp.Id != req.Id {
					t.Errorf("RD %v id %d, asked RD %v id %d", resp.RecursionDesired, resp.Id, rd, req.Id)
				}
			}
		})
	}
}

func TestServeDNSTable(t *testing.T) {
	for _, mode := range podModes {
		r := newModeResolver(t, mode)
		for _, tcp := range []bool{false, true} {
			t.Run(mode+"/"+map[bool]string{false: "udp", true: "tcp"}[tcp], func(t *testing.T) {
				runTable(t, mode, tcp, func(t *testing.T, req *dns.Msg) *dns.Msg { return exchange(t, r, req, tcp) })
			})
		}
	}
}

// TestTableCoverage keeps the table honest: every configuration-dependent
// case has a counterpart, and the table covers each kind of answer.
func TestTableCoverage(t *testing.T) {
	all := resolvertest.Cases()
	types := map[uint16]bool{}
	rcodes := map[int]bool{}
	for _, c := range all {
		types[c.Type] = true
		rcodes[c.Rcode] = true
	}
	for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeTXT, dns.TypeANY} {
		if !types[typ] {
			t.Errorf("no case of type %s", dns.TypeToString[typ])
		}
	}
	for _, rc := range []int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeRefused} {
		if !rcodes[rc] {
			t.Errorf("no case with rcode %s", dns.RcodeToString[rc])
		}
	}
	// A query is asked once per configuration.
	for _, mode := range podModes {
		seen := map[string]bool{}
		for _, c := range resolvertest.Select(all, resolvertest.Config{PodMode: mode}) {
			k := strings.ToLower(c.Name) + " " + dns.TypeToString[c.Type]
			if c.Name != strings.ToLower(c.Name) {
				k = c.Name + " " + dns.TypeToString[c.Type]
			}
			k += " " + strconv.Itoa(int(c.EDNS))
			if seen[k] {
				t.Errorf("%s: %s asked twice", mode, k)
			}
			seen[k] = true
		}
	}
}

func TestNew(t *testing.T) {
	for _, zone := range []string{"", "cluster.local", "Cluster.Local.", "example.org.", "k8s_1.internal"} {
		if _, err := New(Config{Zone: zone}); err != nil {
			t.Errorf("New(%q): %v", zone, err)
		}
	}
	for _, zone := range []string{".", "a..b", "a b.", `a\.b.`, strings.Repeat("a", 64) + ".", strings.Repeat("abcdefghi.", 25)} {
		_, err := New(Config{Zone: zone})
		if err == nil {
			t.Errorf("New(%q) succeeded", zone)
		} else if !strings.Contains(err.Error(), "invalid zone") {
			t.Errorf("New(%q): unclear error %v", zone, err)
		}
	}
}

func TestOtherZoneAndTTL(t *testing.T) {
	r, err := New(Config{Zone: "Kube.Example", TTL: 5})
	if err != nil {
		t.Fatal(err)
	}
	r.Update(testView(1))
	req := new(dns.Msg).SetQuestion("web.default.svc.kube.example.", dns.TypeA)
	resp := exchange(t, r, req, false)
	if got := rrStrings(resp.Answer); !slices.Equal(got, []string{"web.default.svc.kube.example. 5 IN A 10.96.0.110"}) {
		t.Errorf("answer %q", got)
	}
	req = new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeRefused {
		t.Errorf("rcode %s for the default zone", dns.RcodeToString[resp.Rcode])
	}
}

func TestBeforeFirstView(t *testing.T) {
	r := newTestResolver(t, nil)
	if got := r.AppliedIndex(); got != 0 {
		t.Errorf("AppliedIndex %d before any View", got)
	}
	req := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeServerFailure || resp.Authoritative {
		t.Errorf("before any View: %s AA=%v, want SERVFAIL", dns.RcodeToString[resp.Rcode], resp.Authoritative)
	}
	r.Update(testView(42))
	if got := r.AppliedIndex(); got != 42 {
		t.Errorf("AppliedIndex %d, want 42", got)
	}
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("after Update: %v", resp)
	}
}

func TestProtocolErrors(t *testing.T) {
	r := newTestResolver(t, testView(7))

	// More than one question.
	req := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	req.Question = append(req.Question, req.Question[0])
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %s", dns.RcodeToString[resp.Rcode])
	}
	// No question.
	req.Question = nil
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("no question: %s", dns.RcodeToString[resp.Rcode])
	}
	// Opcodes other than QUERY.
	for _, op := range []int{dns.OpcodeNotify, dns.OpcodeUpdate, dns.OpcodeStatus, dns.OpcodeIQuery} {
		req := new(dns.Msg).SetQuestion("cluster.local.", dns.TypeSOA)
		req.Opcode = op
		resp := exchange(t, r, req, false)
		if resp.Rcode != dns.RcodeNotImplemented || resp.Opcode != op {
			t.Errorf("opcode %d: %s opcode %d", op, dns.RcodeToString[resp.Rcode], resp.Opcode)
		}
	}
	// A name that cannot be packed.
	req = new(dns.Msg).SetQuestion(strings.Repeat("a.", 130), dns.TypeA)
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("name too long: %s", dns.RcodeToString[resp.Rcode])
	}
	// Another class.
	req = new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	req.Question[0].Qclass = dns.ClassCHAOS
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeRefused {
		t.Errorf("class CH: %s", dns.RcodeToString[resp.Rcode])
	}
	// A response is never answered.
	req = new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	req.Response = true
	w := dnswritertest.New(false)
	r.ServeDNS(w, req)
	if len(w.Replies()) != 0 {
		t.Errorf("answered a response")
	}
	// Flags: RD and CD are copied, nothing else.
	req = new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	req.RecursionDesired, req.CheckingDisabled, req.AuthenticatedData = false, true, true
	resp := exchange(t, r, req, false)
	if resp.RecursionDesired || !resp.CheckingDisabled || resp.AuthenticatedData || resp.Zero {
		t.Errorf("flags %+v", resp.MsgHdr)
	}
}

func TestEDNS(t *testing.T) {
	r := newTestResolver(t, testView(7))
	big := "big.kube-system.svc.cluster.local."

	// Without EDNS: 512 octets, TC, and as many whole answers as fit.
	req := new(dns.Msg).SetQuestion(big, dns.TypeA)
	resp := exchange(t, r, req, false)
	if !resp.Truncated || len(resp.Answer) == 0 || len(resp.Answer) >= 100 || resp.IsEdns0() != nil {
		t.Errorf("no EDNS: TC=%v, %d answers, opt %v", resp.Truncated, len(resp.Answer), resp.IsEdns0())
	}
	w := dnswritertest.New(false)
	r.ServeDNS(w, req)
	if n := len(w.Replies()[0]); n > 512 || n < 480 {
		t.Errorf("no EDNS: %d octets", n)
	}

	// EDNS 4096, which would hold every answer: cut at 1232 octets all the
	// same; the OPT record comes back with DO echoed.
	req = new(dns.Msg).SetQuestion(big, dns.TypeA)
	req.SetEdns0(4096, true)
	w = dnswritertest.New(false)
	r.ServeDNS(w, req)
	if n := len(w.Replies()[0]); n > 1232 || n < 1200 {
		t.Errorf("EDNS 4096: %d octets", n)
	}
	resp = exchange(t, r, req, false)
	opt := resp.IsEdns0()
	if !resp.Truncated || len(resp.Answer) == 0 || opt == nil || !opt.Do() || opt.Version() != 0 || opt.UDPSize() != dnswire.EDNSPayload {
		t.Errorf("EDNS 4096: TC=%v, %d answers, opt %v", resp.Truncated, len(resp.Answer), opt)
	}

	// EDNS with a small buffer: truncated to it.
	req = new(dns.Msg).SetQuestion(big, dns.TypeA)
	req.SetEdns0(1000, false)
	w = dnswritertest.New(false)
	r.ServeDNS(w, req)
	if n := len(w.Replies()[0]); n > 1000 || n < 900 {
		t.Errorf("EDNS 1000: %d octets", n)
	}
	resp = exchange(t, r, req, false)
	if !resp.Truncated || resp.IsEdns0() == nil || resp.IsEdns0().Do() {
		t.Errorf("EDNS 1000: TC=%v opt %v", resp.Truncated, resp.IsEdns0())
	}

	// TCP: everything.
	req = new(dns.Msg).SetQuestion(big, dns.TypeA)
	resp = exchange(t, r, req, true)
	if resp.Truncated || len(resp.Answer) != 100 {
		t.Errorf("TCP: TC=%v, %d answers", resp.Truncated, len(resp.Answer))
	}

	// The additional section is dropped, without TC, when only it does not
	// fit.
	req = new(dns.Msg).SetQuestion("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV)
	req.SetEdns0(512, false)
	full := exchange(t, r, req, false)
	if len(full.Extra) != 3 { // A, AAAA, OPT
		t.Fatalf("SRV additional %v", full.Extra)
	}

	// Unknown EDNS version.
	req = new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	req.SetEdns0(1232, false)
	req.IsEdns0().SetVersion(1)
	resp = exchange(t, r, req, false)
	if resp.Rcode != dns.RcodeBadVers || resp.IsEdns0() == nil || len(resp.Answer) != 0 {
		t.Errorf("EDNS version 1: %s, opt %v", dns.RcodeToString[resp.Rcode], resp.IsEdns0())
	}

	// Two OPT records.
	req = new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	req.SetEdns0(1232, false)
	req.Extra = append(req.Extra, req.Extra[0])
	if resp := exchange(t, r, req, false); resp.Rcode != dns.RcodeFormatError {
		t.Errorf("two OPT: %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestTruncateSRVAdditional(t *testing.T) {
	// A headless service whose SRV answer fits in 512 octets only without
	// its additional records.
	svc := &fsm.Service{Namespace: "ns", Name: "s", Headless: true, Ports: []fsm.Port{{Name: "p", Protocol: "TCP"}}}
	sl := &fsm.EndpointSlice{Namespace: "ns", Name: "s-1", Service: "s", Ports: []fsm.Port{{Name: "p", Protocol: "TCP", Port: 1}}}
	for _, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"} {
		sl.Endpoints = append(sl.Endpoints, fsm.Endpoint{Addresses: addrs(a), Ready: true})
	}
	r := newTestResolver(t, fsm.NewView(1, []*fsm.Service{svc}, []*fsm.EndpointSlice{sl}))
	req := new(dns.Msg).SetQuestion("_p._tcp.s.ns.svc.cluster.local.", dns.TypeSRV)
	resp := exchange(t, r, req, true)
	if len(resp.Answer) != 7 || len(resp.Extra) != 7 {
		t.Fatalf("TCP: %d answers, %d additional", len(resp.Answer), len(resp.Extra))
	}
	resp = exchange(t, r, req, false)
	if resp.Truncated || len(resp.Answer) != 7 || len(resp.Extra) != 0 {
		t.Errorf("UDP: TC=%v %d answers, %d additional; response is %d octets with them", resp.Truncated,
			len(resp.Answer), len(resp.Extra), exchange(t, r, req, true).Len())
	}
}

func TestForwardHook(t *testing.T) {
	var got []string
	fwd := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		got = append(got, req.Question[0].Name)
		m := new(dns.Msg).SetRcode(req, dns.RcodeSuccess)
		w.WriteMsg(m)
	})
	r, err := New(Config{Forward: fwd})
	if err != nil {
		t.Fatal(err)
	}
	r.Update(testView(1))
	exchange(t, r, new(dns.Msg).SetQuestion("example.com.", dns.TypeA), false)
	exchange(t, r, new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA), false)
	if !slices.Equal(got, []string{"example.com."}) {
		t.Errorf("forwarded %q", got)
	}
}

func TestIncrementalUpdate(t *testing.T) {
	v1 := testView(1)
	r := newTestResolver(t, v1)
	before := r.idx.Load()

	// Change one service and add one slice to another; delete a third.
	web := *v1.Service(fsm.ServiceKey{Namespace: "default", Name: "web"})
	web.ClusterIPs = addrs("10.0.0.99")
	var svcs []*fsm.Service
	for s := range v1.Services() {
		switch s.Name {
		case "web":
			svcs = append(svcs, &web)
		case "v4only":
		default:
			svcs = append(svcs, s)
		}
	}
	var eps []*fsm.EndpointSlice
	for e := range v1.Slices() {
		eps = append(eps, e)
	}
	eps = append(eps, &fsm.EndpointSlice{Namespace: "default", Name: "hlpub-y", Service: "hlpub",
		Endpoints: []fsm.Endpoint{{Addresses: addrs("10.244.2.2")}}})
	v2 := fsm.NewView(2, svcs, eps)
	r.Update(v2)
	after := r.idx.Load()

	// The names one service claims are rebuilt only if it changed.
	for name, n := range after.nodes.All() {
		if n.owner == nil {
			continue // the index's own, or without records
		}
		old, _ := before.nodes.Get(name)
		reused := old == n
		changed := n.owner.Name == "web" || n.owner.Name == "hlpub"
		if reused == changed {
			t.Errorf("%s of %v: reused %v", dnswire.Presentation(name), n.owner.Key(), reused)
		}
		if n.owner.Name == "v4only" {
			t.Errorf("%s of the deleted service still indexed", dnswire.Presentation(name))
		}
	}
	for _, c := range []struct {
		name  string
		rcode int
		n     int
	}{
		{"web.default.svc.cluster.local.", dns.RcodeSuccess, 1},
		{"v4only.default.svc.cluster.local.", dns.RcodeNameError, 0},
		{"hlpub.default.svc.cluster.local.", dns.RcodeSuccess, 2},
		{"10-244-2-2.hlpub.default.svc.cluster.local.", dns.RcodeSuccess, 1},
		{"hl.default.svc.cluster.local.", dns.RcodeSuccess, 2},
	} {
		resp := exchange(t, r, new(dns.Msg).SetQuestion(c.name, dns.TypeA), false)
		if resp.Rcode != c.rcode || len(resp.Answer) != c.n {
			t.Errorf("%s: %s with %d answers, want %s with %d", c.name, dns.RcodeToString[resp.Rcode],
				len(resp.Answer), dns.RcodeToString[c.rcode], c.n)
		}
	}
	resp := exchange(t, r, new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA), false)
	if got := rrStrings(resp.Answer); !slices.Equal(got, []string{"web.default.svc.cluster.local. 30 IN A 10.0.0.99"}) {
		t.Errorf("web: %q", got)
	}
	resp = exchange(t, r, new(dns.Msg).SetQuestion("nope.cluster.local.", dns.TypeA), false)
	if len(resp.Ns) != 1 || resp.Ns[0].(*dns.SOA).Serial != 2 {
		t.Errorf("SOA %v, want serial 2", resp.Ns)
	}
	// The same View again changes nothing.
	r.Update(v2)
	if r.idx.Load() != after {
		t.Errorf("same View rebuilt")
	}
	// Namespaces whose services are all gone disappear.
	r.Update(fsm.NewView(3, nil, nil))
	resp = exchange(t, r, new(dns.Msg).SetQuestion("default.svc.cluster.local.", dns.TypeA), false)
	if resp.Rcode != dns.RcodeNameError {
		t.Errorf("empty View: namespace is %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestInvalidNamesSkipped(t *testing.T) {
	svcs := []*fsm.Service{
		{Namespace: "default", Name: "bad.name", ClusterIPs: addrs("10.0.0.1")},
		{Namespace: "default", Name: "ok", ClusterIPs: addrs("10.0.0.2"),
			Ports: []fsm.Port{{Name: "bad port", Protocol: "TCP", Port: 1}, {Name: "p", Protocol: "TCP", Port: 2}, {Name: "p", Protocol: "TCP", Port: 3}}},
		{Namespace: "default", Name: "ext", Type: fsm.TypeExternalName, ExternalName: "bad..name"},
		{Namespace: "default", Name: "hl", Headless: true},
	}
	eps := []*fsm.EndpointSlice{{Namespace: "default", Name: "hl-1", Service: "hl",
		Endpoints: []fsm.Endpoint{{Addresses: addrs("10.0.0.3"), Hostname: "bad_host!", Ready: true}, {Addresses: []netip.Addr{{}}, Ready: true}}}}
	r := newTestResolver(t, fsm.NewView(1, svcs, eps))
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
		n     int
	}{
		{"ok.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, 1},
		{"_p._tcp.ok.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, 1},
		{"ext.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, 0},
		{"hl.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, 1},
		{"10-0-0-3.hl.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, 1},
	} {
		resp := exchange(t, r, new(dns.Msg).SetQuestion(c.name, c.qtype), false)
		if resp.Rcode != c.rcode || len(resp.Answer) != c.n {
			t.Errorf("%s: %s with %d answers", c.name, dns.RcodeToString[resp.Rcode], len(resp.Answer))
		}
	}
}

// source is a ViewSource for Follow.
type source struct {
	mu   sync.Mutex
	v    *fsm.View
	ch   chan struct{}
	subs int
}

func (s *source) View() *fsm.View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v
}

func (s *source) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	s.subs++
	s.mu.Unlock()
	return s.ch, func() {
		s.mu.Lock()
		s.subs--
		s.mu.Unlock()
	}
}

func (s *source) set(v *fsm.View) {
	s.mu.Lock()
	s.v = v
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func TestFollow(t *testing.T) {
	src := &source{v: testView(5), ch: make(chan struct{}, 1)}
	r := newTestResolver(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Follow(ctx, src)
		close(done)
	}()
	waitIndex := func(want uint64) {
		t.Helper()
		wait.For(t, fmt.Sprintf("AppliedIndex %d", want), 5*time.Second, func() bool { return r.AppliedIndex() == want })
	}
	waitIndex(5)
	src.set(testView(6))
	waitIndex(6)
	cancel()
	<-done
	if src.subs != 0 {
		t.Errorf("subscription not ended")
	}

	// A closed channel ends Follow too.
	close(src.ch)
	src.v = testView(9)
	r.Follow(context.Background(), src)
	if r.AppliedIndex() != 9 {
		t.Errorf("AppliedIndex %d, want 9", r.AppliedIndex())
	}
}

func TestQueriesDuringUpdates(t *testing.T) {
	r := newTestResolver(t, testView(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			w := dnswritertest.New(false)
			req := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
			for {
				select {
				case <-stop:
					return
				default:
				}
				w.Reset()
				r.ServeDNS(w, req)
				resp := new(dns.Msg)
				if err := resp.Unpack(w.Replies()[0]); err != nil || len(resp.Answer) != 1 {
					t.Errorf("during updates: %v %v", resp, err)
					return
				}
			}
		})
	}
	for i := range 50 {
		r.Update(testView(uint64(i + 2)))
	}
	close(stop)
	wg.Wait()
	if r.AppliedIndex() != 51 {
		t.Errorf("AppliedIndex %d", r.AppliedIndex())
	}
}

// TestServed: Config.Served is told of each View right before queries are
// answered from it (whoever sees it served finds it observed), and not
// again for the View already served.
func TestServed(t *testing.T) {
	var r *Resolver
	var served []uint64
	r, err := New(Config{Served: func(v *fsm.View) {
		if got := r.AppliedIndex(); got != v.Index()-1 {
			t.Errorf("Served(%d) called while serving %d, want the View before it", v.Index(), got)
		}
		served = append(served, v.Index())
	}})
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := testView(1), testView(2)
	r.Update(v1)
	r.Update(v1)
	r.Update(v2)
	if !slices.Equal(served, []uint64{1, 2}) {
		t.Errorf("Served called for indexes %v, want [1 2]", served)
	}
}
