package forward

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
)

// testServer is a DNS server of a test's own on 127.0.0.1, UDP and TCP on
// one port.
type testServer struct {
	addr     string
	udp, tcp atomic.Int64 // queries received per transport
}

// queries returns the number of queries received over both transports.
func (s *testServer) queries() int64 { return s.udp.Load() + s.tcp.Load() }

// startServer serves h on 127.0.0.1 (UDP and TCP, same port) until the test
// ends. It counts the queries it receives before calling h.
func startServer(t testing.TB, h dns.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{}
	counted := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if isTCPWriter(w) {
			s.tcp.Add(1)
		} else {
			s.udp.Add(1)
		}
		h(w, r)
	})
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err = net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			break
		}
		ln.Close()
		if !errors.Is(err, syscall.EADDRINUSE) || try == 20 {
			t.Fatal(err)
		}
	}
	s.addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the Shutdowns below
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: counted},
		{Listener: ln, Handler: counted},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { srv.ActivateAndServe() })
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return s
}

func isTCPWriter(w dns.ResponseWriter) bool {
	_, ok := w.LocalAddr().(*net.TCPAddr)
	return ok
}

// answer returns a handler answering every A query with one A record per
// address given, TTL ttl; other types get NODATA with a SOA.
func answer(ttl uint32, ips ...string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(answerMsg(r, ttl, ips...))
	}
}

func answerMsg(r *dns.Msg, ttl uint32, ips ...string) *dns.Msg {
	m := new(dns.Msg).SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	if q.Qtype != dns.TypeA {
		m.Ns = []dns.RR{soa(q.Name, 3600, ttl)}
		return m
	}
	for _, ip := range ips {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   net.ParseIP(ip),
		})
	}
	return m
}

// rcode returns a handler answering every query with rcode and, if soaMin is
// not negative, a SOA with TTL soaTTL and minimum soaMin.
func rcode(rc int, soaTTL uint32, soaMin int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetRcode(r, rc)
		if soaMin >= 0 {
			m.Ns = []dns.RR{soa(r.Question[0].Name, soaTTL, uint32(soaMin))}
		}
		w.WriteMsg(m)
	}
}

func soa(name string, ttl, minimum uint32) *dns.SOA {
	zone := "example."
	if labels := dns.SplitDomainName(name); len(labels) > 0 {
		zone = labels[len(labels)-1] + "."
	}
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: minimum,
	}
}

// silent never answers.
func silent(dns.ResponseWriter, *dns.Msg) {}

// switchable is a handler that can be changed while it serves.
type switchable struct{ h atomic.Value }

func newSwitchable(h dns.HandlerFunc) *switchable {
	s := &switchable{}
	s.set(h)
	return s
}
func (s *switchable) set(h dns.HandlerFunc) { s.h.Store(h) }
func (s *switchable) serve(w dns.ResponseWriter, r *dns.Msg) {
	s.h.Load().(dns.HandlerFunc)(w, r)
}

// fakeClock is a settable clock for cache tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newForwarder returns a Forwarder for cfg whose upstream order is the
// configured one (healthy first), and with clock c when not nil.
func newForwarder(t testing.TB, cfg Config, c *fakeClock) *Forwarder {
	t.Helper()
	if cfg.ResolvConf == "" && len(cfg.Upstreams) == 0 {
		t.Fatal("test forwarder without upstreams")
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.first = func(int) int { return 0 }
	if c != nil {
		f.now = c.now
	}
	return f
}

// serve calls f.ServeDNS with a recorder and returns the one reply, or nil
// if there was none.
func serve(t testing.TB, f *Forwarder, req *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	rec := dnswritertest.New(tcp)
	f.ServeDNS(rec, req)
	switch len(rec.Replies()) {
	case 0:
		return nil
	case 1:
	default:
		t.Fatalf("%d replies", len(rec.Replies()))
	}
	m := new(dns.Msg)
	if err := m.Unpack(rec.Replies()[0]); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	if m.Id != req.Id {
		t.Errorf("reply ID %d, query ID %d", m.Id, req.Id)
	}
	if len(req.Question) == 1 && len(m.Question) == 1 && m.Question[0] != req.Question[0] {
		t.Errorf("reply question %v, query question %v", m.Question[0], req.Question[0])
	}
	return m
}

func query(name string, qtype uint16) *dns.Msg {
	return new(dns.Msg).SetQuestion(name, qtype)
}

// serveForwarder serves f on 127.0.0.1, UDP and TCP, until the test ends.
func serveForwarder(t testing.TB, f *Forwarder) string {
	return startServer(t, f.ServeDNS).addr
}

// exchange sends m to addr and returns the reply.
func exchange(t testing.TB, m *dns.Msg, addr, network string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s to %s: %v", network, m.Question[0].Name, addr, err)
	}
	return r
}

func startForwarder(t testing.TB, f *Forwarder) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.Start(ctx)
}

func rcodeName(rc int) string { return dns.RcodeToString[rc] }

func aRecords(m *dns.Msg) (ips []string, ttls []uint32) {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
			ttls = append(ttls, a.Hdr.Ttl)
		}
	}
	return ips, ttls
}
