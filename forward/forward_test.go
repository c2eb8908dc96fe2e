package forward

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
	"github.com/kdnsd/kdnsd/test/wait"
)

func TestForwardUDPAndTCP(t *testing.T) {
	var mu sync.Mutex
	var seen []*dns.Msg // queries as the upstream got them
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		w.WriteMsg(answerMsg(r, 60, "192.0.2.1"))
	})
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, CacheSize: -1}, nil)
	addr := serveForwarder(t, f)

	for _, tc := range []struct {
		network string
		edns    bool
		do      bool
	}{
		{"udp", false, false},
		{"udp", true, false},
		{"udp", true, true},
		{"tcp", false, false},
		{"tcp", true, true},
	} {
		t.Run(fmt.Sprintf("%s/edns=%v/do=%v", tc.network, tc.edns, tc.do), func(t *testing.T) {
			q := query("WwW.Example.COM.", dns.TypeA)
			if tc.edns {
				q.SetEdns0(4096, tc.do)
			}
			r := exchange(t, q, addr, tc.network)
			if r.Rcode != dns.RcodeSuccess || !r.Response || !r.RecursionDesired || !r.RecursionAvailable {
				t.Errorf("reply header: %v", r.MsgHdr)
			}
			if r.Question[0] != q.Question[0] {
				t.Errorf("question %v, want %v", r.Question[0], q.Question[0])
			}
			if ips, _ := aRecords(r); !slices.Equal(ips, []string{"192.0.2.1"}) {
				t.Errorf("answer %v", r.Answer)
			}
			opt := r.IsEdns0()
			if (opt != nil) != tc.edns {
				t.Errorf("OPT in reply: %v, in query: %v", opt != nil, tc.edns)
			}
			if opt != nil && (opt.Do() != tc.do || opt.UDPSize() != UDPSize) {
				t.Errorf("reply OPT: %v", opt)
			}
			mu.Lock()
			got := seen[len(seen)-1]
			mu.Unlock()
			uopt := got.IsEdns0()
			if uopt == nil || uopt.UDPSize() != UDPSize || uopt.Do() != tc.do || !got.RecursionDesired {
				t.Errorf("upstream query: %v", got)
			}
		})
	}
	if up.tcp.Load() != 0 {
		t.Errorf("%d TCP queries upstream, want UDP only", up.tcp.Load())
	}
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	ips := make([]string, 60)
	for i := range ips {
		ips[i] = fmt.Sprintf("192.0.2.%d", i+1)
	}
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if isTCPWriter(w) {
			w.WriteMsg(answerMsg(r, 60, ips...))
			return
		}
		m := new(dns.Msg).SetReply(r)
		m.Truncated = true
		w.WriteMsg(m)
	})
	f := newForwarder(t, Config{Upstreams: []string{up.addr}}, nil)
	addr := serveForwarder(t, f)

	// Without EDNS the client gets what fits in 512 octets, and TC.
	r := exchange(t, query("big.example.", dns.TypeA), addr, "udp")
	if got, _ := aRecords(r); !r.Truncated || len(got) == 0 || len(got) >= len(ips) {
		t.Errorf("UDP without EDNS: TC=%v, %d of %d records", r.Truncated, len(got), len(ips))
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Errorf("upstream got %d UDP and %d TCP queries, want 1 and 1", up.udp.Load(), up.tcp.Load())
	}
	// Over TCP, or with a large enough buffer, everything (from the cache).
	r = exchange(t, query("big.example.", dns.TypeA), addr, "tcp")
	if got, _ := aRecords(r); r.Truncated || len(got) != len(ips) {
		t.Errorf("TCP: TC=%v, %d of %d records", r.Truncated, len(got), len(ips))
	}
	q := query("big.example.", dns.TypeA)
	q.SetEdns0(UDPSize, false)
	r = exchange(t, q, addr, "udp")
	if got, _ := aRecords(r); r.Truncated || len(got) != len(ips) {
		t.Errorf("UDP with EDNS %d: TC=%v, %d of %d records", UDPSize, r.Truncated, len(got), len(ips))
	}
	if up.queries() != 2 {
		t.Errorf("upstream got %d queries, want 2", up.queries())
	}
}

func TestFailoverAndHealth(t *testing.T) {
	a := newSwitchable(silent)
	upA := startServer(t, a.serve)
	upB := startServer(t, answer(60, "192.0.2.2"))
	const timeout = 500 * time.Millisecond
	f := newForwarder(t, Config{
		Upstreams:           []string{upA.addr, upB.addr},
		Timeout:             timeout,
		HealthCheckInterval: 20 * time.Millisecond,
		CacheSize:           -1,
	}, nil)
	ask := func(name string) (ip string) {
		t.Helper()
		r := serve(t, f, query(name, dns.TypeA), false)
		got, _ := aRecords(r)
		if r.Rcode != dns.RcodeSuccess || len(got) != 1 {
			t.Fatalf("%s: %s %v", name, rcodeName(r.Rcode), r.Answer)
		}
		return got[0]
	}
	health := func() (healthyA, healthyB bool) {
		s := f.Stats().Upstreams
		return s[0].Healthy, s[1].Healthy
	}

	// A times out, B answers; A is marked down after MaxFails.
	for i := 1; i <= MaxFails; i++ {
		if ip := ask(fmt.Sprintf("q%d.example.", i)); ip != "192.0.2.2" {
			t.Fatalf("answer from %s, want B", ip)
		}
		if got := upA.queries(); got != int64(i) {
			t.Fatalf("A got %d queries, want %d", got, i)
		}
		a, b := health()
		if a != (i < MaxFails) || !b {
			t.Fatalf("after %d failures: healthy A=%v B=%v", i, a, b)
		}
	}
	s := f.Stats().Upstreams
	if s[0].Failures != MaxFails || s[0].Queries != MaxFails || s[1].Failures != 0 || s[1].Queries != MaxFails {
		t.Errorf("stats %+v", s)
	}

	// Down, A is tried after B: no more waiting for it (A is not asked).
	if ip := ask("q3.example."); ip != "192.0.2.2" || upA.queries() != MaxFails {
		t.Errorf("with A down: answer %s, A got %d queries", ip, upA.queries())
	}

	// A comes back; the health check notices.
	a.set(answer(60, "192.0.2.1"))
	startForwarder(t, f)
	wait.For(t, "A healthy again", 10*time.Second, func() bool { a, _ := health(); return a })
	if ip := ask("q4.example."); ip != "192.0.2.1" {
		t.Errorf("answer from %s, want A again", ip)
	}
}

func TestAllDownStillTried(t *testing.T) {
	a := newSwitchable(rcode(dns.RcodeServerFailure, 0, -1))
	b := newSwitchable(rcode(dns.RcodeRefused, 0, -1))
	upA, upB := startServer(t, a.serve), startServer(t, b.serve)
	f := newForwarder(t, Config{Upstreams: []string{upA.addr, upB.addr}, CacheSize: -1}, nil)

	for i := range MaxFails {
		r := serve(t, f, query(fmt.Sprintf("q%d.example.", i), dns.TypeA), false)
		// The last upstream's reply is passed on.
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", rcodeName(r.Rcode))
		}
	}
	for _, u := range f.Stats().Upstreams {
		if u.Healthy {
			t.Fatalf("%s still healthy", u.Addr)
		}
	}
	b.set(answer(60, "192.0.2.2"))
	r := serve(t, f, query("q.example.", dns.TypeA), false)
	if ips, _ := aRecords(r); !slices.Equal(ips, []string{"192.0.2.2"}) {
		t.Errorf("with every upstream down: %s %v", rcodeName(r.Rcode), r.Answer)
	}
	if upA.queries() != MaxFails+1 || upB.queries() != MaxFails+1 {
		t.Errorf("A got %d, B %d queries", upA.queries(), upB.queries())
	}
	if s := f.Stats().Upstreams; s[0].Healthy || !s[1].Healthy {
		t.Errorf("health after B answered: %+v", s)
	}
}

func TestMismatchedReplyFailsOver(t *testing.T) {
	for name, h := range map[string]dns.HandlerFunc{
		"other name": func(w dns.ResponseWriter, r *dns.Msg) {
			m := answerMsg(r, 60, "192.0.2.66")
			m.Question[0].Name = "evil.example."
			w.WriteMsg(m)
		},
		"other type": func(w dns.ResponseWriter, r *dns.Msg) {
			m := answerMsg(r, 60, "192.0.2.66")
			m.Question[0].Qtype = dns.TypeMX
			w.WriteMsg(m)
		},
		"no question": func(w dns.ResponseWriter, r *dns.Msg) {
			m := answerMsg(r, 60, "192.0.2.66")
			m.Question = nil
			w.WriteMsg(m)
		},
	} {
		t.Run(name, func(t *testing.T) {
			upA := startServer(t, h)
			upB := startServer(t, answer(60, "192.0.2.2"))
			f := newForwarder(t, Config{Upstreams: []string{upA.addr, upB.addr}}, nil)
			r := serve(t, f, query("www.example.", dns.TypeA), false)
			if ips, _ := aRecords(r); !slices.Equal(ips, []string{"192.0.2.2"}) {
				t.Errorf("answer %v", r.Answer)
			}
			if s := f.Stats().Upstreams[0]; s.Failures != 1 {
				t.Errorf("A: %+v", s)
			}
		})
	}
}

func TestCache(t *testing.T) {
	up := startServer(t, answer(300, "192.0.2.1"))
	clock := newFakeClock()
	f := newForwarder(t, Config{Upstreams: []string{up.addr}}, clock)

	r := serve(t, f, query("www.example.", dns.TypeA), false)
	if _, ttls := aRecords(r); !slices.Equal(ttls, []uint32{300}) {
		t.Fatalf("first answer %v", r.Answer)
	}
	clock.advance(10500 * time.Millisecond)
	q := query("WWW.eXample.", dns.TypeA) // same name, other case
	q.Id = 4242
	r = serve(t, f, q, false)
	if ips, ttls := aRecords(r); !slices.Equal(ips, []string{"192.0.2.1"}) || !slices.Equal(ttls, []uint32{290}) {
		t.Errorf("cached answer %v, want TTL 290", r.Answer)
	}
	if up.queries() != 1 {
		t.Errorf("upstream got %d queries, want 1", up.queries())
	}

	// Other types, and the DO bit, are other entries.
	serve(t, f, query("www.example.", dns.TypeAAAA), false)
	do := query("www.example.", dns.TypeA)
	do.SetEdns0(1232, true)
	serve(t, f, do, false)
	if up.queries() != 3 {
		t.Errorf("upstream got %d queries, want 3", up.queries())
	}
	st := f.Stats()
	if st.CacheHits != 1 || st.CacheMisses != 3 || st.CacheEntries != 3 {
		t.Errorf("stats %+v", st)
	}

	// Expired, it is asked again.
	clock.advance(290 * time.Second)
	r = serve(t, f, query("www.example.", dns.TypeA), false)
	if _, ttls := aRecords(r); !slices.Equal(ttls, []uint32{300}) || up.queries() != 4 {
		t.Errorf("after expiry: %v, %d upstream queries", r.Answer, up.queries())
	}
}

func TestCacheEviction(t *testing.T) {
	up := startServer(t, answer(300, "192.0.2.1"))
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, CacheSize: 2}, nil)
	for _, n := range []string{"a.", "b.", "a.", "c.", "a.", "b."} { // b is evicted by c
		serve(t, f, query(n, dns.TypeA), false)
	}
	if st := f.Stats(); up.queries() != 4 || st.CacheEntries != 2 || st.CacheHits != 2 {
		t.Errorf("%d upstream queries, stats %+v", up.queries(), st)
	}
}

func TestNegativeCache(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       dns.HandlerFunc
		qtype   uint16
		rcode   int
		wantTTL uint32 // 0: not cached
	}{
		{"NXDOMAIN SOA minimum", rcode(dns.RcodeNameError, 3600, 60), dns.TypeA, dns.RcodeNameError, 60},
		{"NXDOMAIN SOA TTL", rcode(dns.RcodeNameError, 45, 600), dns.TypeA, dns.RcodeNameError, 45},
		{"NODATA", answer(120, "192.0.2.1"), dns.TypeTXT, dns.RcodeSuccess, 120},
		{"NXDOMAIN without SOA", rcode(dns.RcodeNameError, 0, -1), dns.TypeA, dns.RcodeNameError, 0},
		{"NODATA without SOA", rcode(dns.RcodeSuccess, 0, -1), dns.TypeA, dns.RcodeSuccess, 0},
		{"SERVFAIL", rcode(dns.RcodeServerFailure, 3600, 60), dns.TypeA, dns.RcodeServerFailure, 0},
		{"REFUSED", rcode(dns.RcodeRefused, 3600, 60), dns.TypeA, dns.RcodeRefused, 0},
		{"FORMERR", rcode(dns.RcodeFormatError, 3600, 60), dns.TypeA, dns.RcodeFormatError, 0},
		{"TTL 0", answer(0, "192.0.2.1"), dns.TypeA, dns.RcodeSuccess, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startServer(t, tc.h)
			clock := newFakeClock()
			f := newForwarder(t, Config{Upstreams: []string{up.addr}}, clock)
			q := query("nx.example.", tc.qtype)
			r := serve(t, f, q, false)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
			r = serve(t, f, q, false)
			if tc.wantTTL == 0 {
				if up.queries() != 2 {
					t.Errorf("upstream got %d queries, want 2 (not cached)", up.queries())
				}
				return
			}
			if up.queries() != 1 {
				t.Fatalf("upstream got %d queries, want 1 (cached)", up.queries())
			}
			if r.Rcode != tc.rcode || len(r.Ns) != 1 || r.Ns[0].Header().Ttl != tc.wantTTL {
				t.Fatalf("cached: %s %v, want SOA TTL %d", rcodeName(r.Rcode), r.Ns, tc.wantTTL)
			}
			clock.advance(time.Duration(tc.wantTTL-1) * time.Second)
			if r = serve(t, f, q, false); up.queries() != 1 || r.Ns[0].Header().Ttl != 1 {
				t.Errorf("a second before expiry: %d upstream queries, %v", up.queries(), r.Ns)
			}
			clock.advance(time.Second)
			if serve(t, f, q, false); up.queries() != 2 {
				t.Errorf("at expiry: %d upstream queries, want 2", up.queries())
			}
		})
	}
}

func TestTTLCaps(t *testing.T) {
	pos := startServer(t, answer(86400, "192.0.2.1"))
	neg := startServer(t, rcode(dns.RcodeNameError, 86400, 86400))
	clock := newFakeClock()
	f := newForwarder(t, Config{
		Upstreams:      []string{pos.addr},
		StubDomains:    map[string][]string{"neg.example.": {neg.addr}},
		MaxTTL:         100 * time.Second,
		MaxNegativeTTL: 10 * time.Second,
	}, clock)
	for _, tc := range []struct {
		name string
		up   *testServer
		want uint32
	}{
		{"www.example.", pos, 100},
		{"x.neg.example.", neg, 10},
	} {
		q := query(tc.name, dns.TypeA)
		ttl := func(r *dns.Msg) uint32 {
			if len(r.Answer) > 0 {
				return r.Answer[0].Header().Ttl
			}
			return r.Ns[0].Header().Ttl
		}
		if got := ttl(serve(t, f, q, false)); got != tc.want {
			t.Errorf("%s: TTL %d, want %d", tc.name, got, tc.want)
		}
		clock.advance(time.Duration(tc.want-1) * time.Second)
		if got := ttl(serve(t, f, q, false)); got != 1 || tc.up.queries() != 1 {
			t.Errorf("%s: TTL %d after %ds, upstream queries %d", tc.name, got, tc.want-1, tc.up.queries())
		}
		clock.advance(time.Second)
		if serve(t, f, q, false); tc.up.queries() != 2 {
			t.Errorf("%s: not asked again at the capped expiry", tc.name)
		}
	}
}

func TestServeStale(t *testing.T) {
	for _, tc := range []struct {
		name string
		dead dns.HandlerFunc
	}{
		{"SERVFAIL", rcode(dns.RcodeServerFailure, 0, -1)},
		{"timeout", silent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newSwitchable(answer(5, "192.0.2.1")), newSwitchable(answer(5, "192.0.2.1"))
			upA, upB := startServer(t, a.serve), startServer(t, b.serve)
			clock := newFakeClock()
			f := newForwarder(t, Config{
				Upstreams:  []string{upA.addr, upB.addr},
				Timeout:    400 * time.Millisecond,
				ServeStale: 10 * time.Minute,
			}, clock)
			q := query("www.example.", dns.TypeA)
			serve(t, f, q, false)

			clock.advance(10 * time.Second)
			a.set(tc.dead)
			b.set(tc.dead)
			eq := query("www.example.", dns.TypeA)
			eq.SetEdns0(1232, false)
			r := serve(t, f, eq, false)
			if ips, ttls := aRecords(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(ips, []string{"192.0.2.1"}) || !slices.Equal(ttls, []uint32{StaleTTL}) {
				t.Fatalf("stale answer: %s %v", rcodeName(r.Rcode), r.Answer)
			}
			if ede := staleEDE(r); !ede {
				t.Errorf("no Stale Answer EDE in %v", r.IsEdns0())
			}
			r = serve(t, f, q, false)
			if _, ttls := aRecords(r); !slices.Equal(ttls, []uint32{StaleTTL}) || r.IsEdns0() != nil {
				t.Errorf("stale answer without EDNS: %v %v", r.Answer, r.Extra)
			}
			// Both upstreams were asked each time; B was not needed at first.
			if st := f.Stats(); st.StaleServed != 2 || upA.queries() != 3 || upB.queries() != 2 {
				t.Errorf("stale served %d; upstream queries %d and %d, want 3 and 2", st.StaleServed, upA.queries(), upB.queries())
			}

			// An upstream that answers again is asked first.
			b.set(answer(5, "192.0.2.2"))
			r = serve(t, f, q, false)
			if ips, ttls := aRecords(r); !slices.Equal(ips, []string{"192.0.2.2"}) || !slices.Equal(ttls, []uint32{5}) {
				t.Errorf("after recovery: %v", r.Answer)
			}

			// Past the window, nothing stale is left.
			b.set(tc.dead)
			clock.advance(5*time.Second + 10*time.Minute)
			if r = serve(t, f, q, false); r.Rcode != dns.RcodeServerFailure {
				t.Errorf("past the serve-stale window: %s %v", rcodeName(r.Rcode), r.Answer)
			}
		})
	}
}

func staleEDE(r *dns.Msg) bool {
	opt := r.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeStaleAnswer {
			return true
		}
	}
	return false
}

func TestServeStaleDisabled(t *testing.T) {
	a := newSwitchable(answer(5, "192.0.2.1"))
	up := startServer(t, a.serve)
	clock := newFakeClock()
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, ServeStale: -1}, clock)
	q := query("www.example.", dns.TypeA)
	serve(t, f, q, false)
	clock.advance(6 * time.Second)
	a.set(rcode(dns.RcodeServerFailure, 0, -1))
	if r := serve(t, f, q, false); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("%s %v, want SERVFAIL", rcodeName(r.Rcode), r.Answer)
	}
}

func TestMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-release
		w.WriteMsg(answerMsg(r, 60, "192.0.2.1"))
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server shuts down
	const bound = 2
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, MaxInFlight: bound, Timeout: 10 * time.Second}, nil)

	fire := func(names ...string) chan int { // of rcodes, -1 for no reply
		ch := make(chan int, len(names))
		for _, n := range names {
			go func() {
				rec := dnswritertest.New(false)
				f.ServeDNS(rec, query(n, dns.TypeA))
				m := new(dns.Msg)
				if len(rec.Replies()) != 1 || m.Unpack(rec.Replies()[0]) != nil {
					ch <- -1
					return
				}
				ch <- m.Rcode
			}()
		}
		return ch
	}
	held := fire("a.example.", "b.example.")
	// In flight counts a query from when it takes its slot, before the
	// upstream has it: wait for both.
	wait.For(t, "the bound to be reached", 10*time.Second, func() bool {
		return f.Stats().InFlight == bound && up.queries() == bound
	})
	excess := fire("c.example.", "d.example.", "e.example.", "f.example.", "g.example.")
	// While the upstream still holds the first ones, the excess are
	// refused at once: counted as overloaded, never sent upstream.
	for range 5 {
		if rcode := <-excess; rcode != dns.RcodeServerFailure {
			t.Errorf("excess query: %s, want SERVFAIL", rcodeName(rcode))
		}
	}
	if st := f.Stats(); st.Overloaded != 5 || st.InFlight != bound {
		t.Errorf("stats %+v", st)
	}
	if n := up.queries(); n != bound {
		t.Errorf("the upstream got %d queries, want the %d held ones", n, bound)
	}
	unblock()
	for range bound {
		if rcode := <-held; rcode != dns.RcodeSuccess {
			t.Errorf("held query: %s", rcodeName(rcode))
		}
	}
	if n := f.Stats().InFlight; n != 0 {
		t.Errorf("%d in flight at the end", n)
	}
}

func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-release
		w.WriteMsg(answerMsg(r, 60, "192.0.2.1"))
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, MaxInFlight: 1, Timeout: 10 * time.Second}, nil)

	const n = 5
	var wg sync.WaitGroup
	replies := make([]*dns.Msg, n)
	for i := range n {
		q := query("same.example.", dns.TypeA)
		q.Id = uint16(100 + i)
		wg.Go(func() { replies[i] = serve(t, f, q, false) })
		if i == 0 {
			wait.For(t, "the first query upstream", 10*time.Second, func() bool { return up.queries() == 1 })
		}
	}
	wait.For(t, "the others to join", 10*time.Second, func() bool { return f.Stats().Coalesced == n-1 })
	unblock()
	wg.Wait()
	for i, r := range replies {
		if ips, _ := aRecords(r); r.Id != uint16(100+i) || !slices.Equal(ips, []string{"192.0.2.1"}) {
			t.Errorf("reply %d: id %d %v", i, r.Id, r.Answer)
		}
	}
	if up.queries() != 1 || f.Stats().Overloaded != 0 {
		t.Errorf("upstream got %d queries, %d overloaded", up.queries(), f.Stats().Overloaded)
	}
}

func TestStubDomains(t *testing.T) {
	def := startServer(t, answer(60, "192.0.2.10"))
	s1 := startServer(t, answer(60, "192.0.2.11"))
	s2 := startServer(t, answer(60, "192.0.2.12"))
	f := newForwarder(t, Config{
		Upstreams: []string{def.addr},
		StubDomains: map[string][]string{
			"Example.COM":       {s1.addr},
			"sub.example.com.":  {s2.addr},
			"10.in-addr.arpa.":  {s1.addr},
			"other.example.net": {s2.addr, s1.addr},
		},
		CacheSize: -1,
	}, nil)
	for _, tc := range []struct{ name, want string }{
		{"example.com.", "192.0.2.11"},
		{"www.example.com.", "192.0.2.11"},
		{"WWW.EXAMPLE.COM.", "192.0.2.11"},
		{"sub.example.com.", "192.0.2.12"},
		{"a.b.SUB.example.com.", "192.0.2.12"},
		{"xsub.example.com.", "192.0.2.11"},
		{"example.org.", "192.0.2.10"},
		{"com.", "192.0.2.10"},
		{"notexample.com.", "192.0.2.10"},
		{"4.3.2.10.in-addr.arpa.", "192.0.2.11"},
		{"4.3.2.11.in-addr.arpa.", "192.0.2.10"},
		{"x.other.example.net.", "192.0.2.12"},
		{".", "192.0.2.10"},
	} {
		r := serve(t, f, query(tc.name, dns.TypeA), false)
		if ips, _ := aRecords(r); !slices.Equal(ips, []string{tc.want}) {
			t.Errorf("%s: answered by %v, want %s", tc.name, ips, tc.want)
		}
	}
	if n := len(f.Stats().Upstreams); n != 3 {
		t.Errorf("%d distinct upstreams, want 3", n)
	}
}

func TestOddRequests(t *testing.T) {
	up := startServer(t, answer(60, "192.0.2.1"))
	f := newForwarder(t, Config{Upstreams: []string{up.addr}}, nil)
	withEDNS := func(m *dns.Msg, version uint8) *dns.Msg {
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(version)
		return m
	}
	for _, tc := range []struct {
		name  string
		req   *dns.Msg
		rcode int // -1: no reply
	}{
		{"two questions", func() *dns.Msg {
			m := query("a.example.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), dns.RcodeFormatError},
		{"no question", &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7, RecursionDesired: true}}, dns.RcodeFormatError},
		{"NOTIFY", func() *dns.Msg { m := query("a.example.", dns.TypeSOA); m.Opcode = dns.OpcodeNotify; return m }(), dns.RcodeNotImplemented},
		{"EDNS version 1", withEDNS(query("a.example.", dns.TypeA), 1), dns.RcodeBadVers},
		{"two OPT", func() *dns.Msg {
			m := withEDNS(query("a.example.", dns.TypeA), 0)
			m.Extra = append(m.Extra, m.Extra[0])
			return m
		}(), dns.RcodeFormatError},
		{"AXFR", query("example.", dns.TypeAXFR), dns.RcodeRefused},
		{"IXFR", query("example.", dns.TypeIXFR), dns.RcodeRefused},
		{"response", func() *dns.Msg { m := query("a.example.", dns.TypeA); m.Response = true; return m }(), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, f, tc.req, false)
			switch {
			case tc.rcode < 0 && r != nil:
				t.Errorf("replied %s", rcodeName(r.Rcode))
			case tc.rcode < 0:
			case r == nil:
				t.Errorf("no reply, want %s", rcodeName(tc.rcode))
			case r.Rcode != tc.rcode:
				t.Errorf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
		})
	}
	if up.queries() != 0 {
		t.Errorf("upstream got %d queries", up.queries())
	}
}

func TestExtendedRcodeWithoutEDNS(t *testing.T) {
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetRcode(r, dns.RcodeBadCookie) // needs OPT
		m.SetEdns0(1232, false)
		w.WriteMsg(m)
	})
	f := newForwarder(t, Config{Upstreams: []string{up.addr}}, nil)
	if r := serve(t, f, query("a.example.", dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("without EDNS: %s", rcodeName(r.Rcode))
	}
	q := query("a.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	if r := serve(t, f, q, false); r.Rcode != dns.RcodeBadCookie {
		t.Errorf("with EDNS: %s", rcodeName(r.Rcode))
	}
}

func TestTruncatedAndTCPFails(t *testing.T) {
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if isTCPWriter(w) {
			return // never answers over TCP
		}
		m := answerMsg(r, 60, "192.0.2.1")
		m.Truncated = true
		w.WriteMsg(m)
	})
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, Timeout: 400 * time.Millisecond}, nil)
	// The truncated reply is passed on, without records, so that the client
	// retries over TCP; it is not cached.
	for i := 1; i <= 2; i++ {
		r := serve(t, f, query("www.example.", dns.TypeA), false)
		if r.Rcode != dns.RcodeSuccess || !r.Truncated || len(r.Answer) != 0 {
			t.Errorf("reply %d: %v", i, r)
		}
		if up.udp.Load() != int64(i) || up.tcp.Load() != int64(i) {
			t.Errorf("upstream got %d UDP and %d TCP queries, want %d each", up.udp.Load(), up.tcp.Load(), i)
		}
	}
	if s := f.Stats().Upstreams[0]; s.Failures != 2 || s.Queries != 2 || s.Healthy {
		t.Errorf("stats %+v", s)
	}
}
