package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Forwarder resolves names outside the cluster zone through upstream
// servers. It implements dns.Handler and is safe for concurrent use.
type Forwarder struct {
	log *slog.Logger
	s   settings

	all      []*upstream            // every distinct upstream, in configuration order
	defaults []*upstream            // the default set
	stubs    map[string][]*upstream // canonical stub domain → its set

	cache  *cache // nil when disabled
	flight flightGroup
	sem    chan struct{} // one token per upstream query in flight

	loop loopDetector

	hits, misses, stale, overloaded atomic.Uint64

	started atomic.Bool

	// Seams for tests.
	now      func() time.Time
	exchange func(ctx context.Context, m *dns.Msg, addr string, tcp bool) (*dns.Msg, error)
	first    func(n int) int // index of the first upstream to try among n
}

// New checks cfg and returns a Forwarder. It sends nothing: health checks
// and loop detection begin with Start.
func New(cfg Config) (*Forwarder, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	f := &Forwarder{
		log:   cfg.Logger,
		s:     s,
		sem:   make(chan struct{}, s.maxInFlight),
		now:   time.Now,
		first: rand.IntN,
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	udp := &dns.Client{Net: "udp", Timeout: s.timeout, UDPSize: UDPSize}
	tcp := &dns.Client{Net: "tcp", Timeout: s.timeout}
	f.exchange = func(ctx context.Context, m *dns.Msg, addr string, useTCP bool) (*dns.Msg, error) {
		c := udp
		if useTCP {
			c = tcp
		}
		r, _, err := c.ExchangeContext(ctx, m, addr)
		return r, err
	}

	canonical := func(ap netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	}
	local := make([]netip.AddrPort, len(cfg.LocalAddrs))
	for i, ap := range cfg.LocalAddrs {
		local[i] = canonical(ap)
	}
	byAddr := map[netip.AddrPort]*upstream{}
	// set turns addresses into a set of upstreams, shared between sets.
	set := func(what string, aps []netip.AddrPort) ([]*upstream, error) {
		var ups []*upstream
		for _, ap := range aps {
			if slices.Contains(local, canonical(ap)) {
				f.log.Error("not forwarding to an upstream that is one of our own addresses", "for", what, "upstream", ap.String())
				continue
			}
			u := byAddr[ap]
			if u == nil {
				u = &upstream{addr: ap.String()}
				byAddr[ap] = u
				f.all = append(f.all, u)
			}
			if !slices.Contains(ups, u) {
				ups = append(ups, u)
			}
		}
		if len(ups) == 0 {
			return nil, fmt.Errorf("forward: %s: %w left", what, errNoUpstreams)
		}
		return ups, nil
	}
	parseAll := func(what string, list []string) ([]netip.AddrPort, error) {
		if len(list) == 0 {
			return nil, fmt.Errorf("forward: %s: %w", what, errNoUpstreams)
		}
		aps := make([]netip.AddrPort, len(list))
		for i, s := range list {
			ap, err := parseUpstream(s)
			if err != nil {
				return nil, fmt.Errorf("forward: %s: %w", what, err)
			}
			aps[i] = ap
		}
		return aps, nil
	}

	var aps []netip.AddrPort
	if len(cfg.Upstreams) > 0 {
		if aps, err = parseAll("Upstreams", cfg.Upstreams); err != nil {
			return nil, err
		}
	} else {
		path := cfg.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		ns, skipped, err := readResolvConf(path)
		if err != nil {
			return nil, fmt.Errorf("forward: no Upstreams given, and reading nameservers from %s: %w", path, err)
		}
		for _, l := range skipped {
			f.log.Warn("skipping invalid nameserver line", "file", path, "line", l)
		}
		if len(ns) == 0 {
			return nil, fmt.Errorf("forward: no Upstreams given, and %s names no valid nameserver", path)
		}
		aps = ns
	}
	if f.defaults, err = set("default upstreams", aps); err != nil {
		return nil, err
	}
	if len(cfg.StubDomains) > 0 {
		f.stubs = make(map[string][]*upstream, len(cfg.StubDomains))
		domains := make([]string, 0, len(cfg.StubDomains))
		for d := range cfg.StubDomains {
			domains = append(domains, d)
		}
		slices.Sort(domains) // deterministic errors and upstream order
		for _, d := range domains {
			c, err := stubDomain(d)
			if err != nil {
				return nil, fmt.Errorf("forward: %w", err)
			}
			if _, dup := f.stubs[c]; dup {
				return nil, fmt.Errorf("forward: stub domain %q given twice", c)
			}
			what := fmt.Sprintf("stub domain %q", d)
			aps, err := parseAll(what, cfg.StubDomains[d])
			if err != nil {
				return nil, err
			}
			if f.stubs[c], err = set(what, aps); err != nil {
				return nil, err
			}
		}
	}
	for _, u := range f.all {
		u.log = f.log
	}
	if s.cacheSize > 0 {
		f.cache = newCache(s.cacheSize, s.serveStale)
	}
	f.loop.init()
	return f, nil
}

// Start starts the health checks of down upstreams and the loop detection,
// and returns. Both stop when ctx is done. Later calls do nothing.
func (f *Forwarder) Start(ctx context.Context) {
	if !f.started.CompareAndSwap(false, true) {
		return
	}
	f.loop.ctx = ctx
	go f.healthLoop(ctx)
	go func() {
		if !f.detectLoops(ctx) && ctx.Err() == nil {
			f.log.Info("no forwarding loop found", "upstreams", f.upstreamAddrs())
		}
	}()
}

// clientInfo is what a reply depends on in the client's query.
type clientInfo struct {
	edns, do, tcp bool
	size          int // largest reply
}

// Header bits of a cache key.
const (
	keyDO = 1 << iota
	keyCD
	keyRD
)

// ServeDNS answers one query. It implements dns.Handler.
func (f *Forwarder) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if req == nil || req.Response {
		return // never answer a response
	}
	ci := clientInfo{size: dns.MinMsgSize}
	if a := w.LocalAddr(); a != nil && strings.HasPrefix(a.Network(), "tcp") {
		ci.tcp = true
		ci.size = dns.MaxMsgSize
	}
	var opt *dns.OPT
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil { // RFC 6891 section 6.1.1
				f.writeError(w, req, nil, dns.RcodeFormatError)
				return
			}
			opt = o
		}
	}
	if opt != nil {
		ci.edns, ci.do = true, opt.Do()
		if !ci.tcp {
			ci.size = min(max(int(opt.UDPSize()), dns.MinMsgSize), UDPSize)
		}
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		f.writeError(w, req, &ci, dns.RcodeNotImplemented)
		return
	case len(req.Question) != 1:
		f.writeError(w, req, &ci, dns.RcodeFormatError)
		return
	case opt != nil && opt.Version() != 0:
		f.writeError(w, req, &ci, dns.RcodeBadVers)
		return
	}
	q := req.Question[0]
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		f.writeError(w, req, &ci, dns.RcodeRefused) // no zone transfers through a cache
		return
	}
	name := dns.CanonicalName(q.Name)
	if f.loop.probeCameBack(name) {
		f.writeError(w, req, &ci, dns.RcodeServerFailure) // it goes no further round
		return
	}

	k := cacheKey{name: name, qtype: q.Qtype, qclass: q.Qclass}
	if ci.do {
		k.bits |= keyDO
	}
	if req.CheckingDisabled {
		k.bits |= keyCD
	}
	if req.RecursionDesired {
		k.bits |= keyRD
	}
	if f.cache != nil {
		if m, _, ok := f.cache.get(k, f.now(), false); ok {
			f.hits.Add(1)
			f.reply(w, req, &ci, m, false)
			return
		}
		f.misses.Add(1)
	}

	res := f.flight.do(k, func() flightResult { return f.resolve(k, q) })
	if res.err == nil {
		f.reply(w, req, &ci, res.msg.Copy(), false)
		return
	}
	if f.cache != nil {
		if m, stale, ok := f.cache.get(k, f.now(), true); ok {
			if stale {
				f.stale.Add(1)
				f.log.Debug("serving stale answer", "name", q.Name, "type", dns.Type(q.Qtype), "err", res.err)
			}
			f.reply(w, req, &ci, m, stale)
			return
		}
	}
	if res.msg != nil { // an upstream's SERVFAIL, REFUSED, or truncated reply
		f.reply(w, req, &ci, res.msg.Copy(), false)
		return
	}
	f.writeError(w, req, &ci, dns.RcodeServerFailure)
}

var (
	errOverloaded = errors.New("too many upstream queries in flight")
	errLooping    = errors.New("forwarding loop detected")
	errAborted    = errors.New("upstream query aborted")
)

// resolve asks the upstreams of the query's set, caches the answer, and
// returns it; or returns an error with the last rejected reply, if any.
func (f *Forwarder) resolve(k cacheKey, q dns.Question) flightResult {
	if f.loopPaused() {
		return flightResult{err: errLooping}
	}
	select {
	case f.sem <- struct{}{}:
	default:
		f.overloaded.Add(1)
		return flightResult{err: errOverloaded}
	}
	defer func() { <-f.sem }()

	m := new(dns.Msg)
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = k.bits&keyRD != 0
	m.CheckingDisabled = k.bits&keyCD != 0
	m.AuthenticatedData = true // RFC 6840 section 5.7
	m.Question = []dns.Question{q}
	m.SetEdns0(UDPSize, k.bits&keyDO != 0)

	r, err := f.ask(f.upstreamsFor(k.name), m)
	if err != nil {
		return flightResult{msg: r, err: err}
	}
	if ttl, ok := f.cacheTTL(r); ok {
		r = cacheCopy(r, ttl) // the TTL caps hold for this reply too
		if f.cache != nil {
			f.cache.set(k, r, f.now(), ttl)
		}
	}
	return flightResult{msg: r}
}

// upstreamsFor returns the set for a canonical name: that of the longest
// stub domain it is in, or the default one.
func (f *Forwarder) upstreamsFor(name string) []*upstream {
	if len(f.stubs) > 0 {
		for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
			if ups, ok := f.stubs[name[off:]]; ok {
				return ups
			}
		}
	}
	return f.defaults
}

// ask tries the upstreams of a set in turn, healthy ones first, until one
// answers. On failure it returns the last rejected reply, if any.
func (f *Forwarder) ask(ups []*upstream, m *dns.Msg) (*dns.Msg, error) {
	n := len(ups)
	var buf [8]*upstream
	order := buf[:0]
	down := make([]bool, n)
	start := f.first(n)
	for i := range n {
		down[i] = ups[i].down.Load()
	}
	for pass := range 2 {
		for i := range n {
			j := (start + i) % n
			if down[j] == (pass == 1) {
				order = append(order, ups[j])
			}
		}
	}
	var last *dns.Msg
	var err error
	for _, u := range order {
		if f.loop.looping.Load() {
			return nil, errLooping
		}
		var r *dns.Msg
		r, err = f.try(u, m)
		if err == nil {
			u.succeeded()
			return r, nil
		}
		u.failed(err)
		if r != nil {
			last = r
		}
	}
	return last, err
}

// cacheTTL returns how long a reply may be cached.
func (f *Forwarder) cacheTTL(r *dns.Msg) (uint32, bool) {
	if r.Truncated || r.Opcode != dns.OpcodeQuery {
		return 0, false
	}
	var limit uint32
	switch {
	case r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0:
		limit = f.s.maxTTL
	case r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError:
		limit = f.s.maxNeg
		if !slices.ContainsFunc(r.Ns, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeSOA }) {
			return 0, false // RFC 2308 section 5
		}
	default:
		return 0, false
	}
	ttl := limit
	for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
		for _, rr := range sec {
			t := rr.Header().Ttl
			if soa, ok := rr.(*dns.SOA); ok {
				t = min(t, soa.Minttl)
			}
			ttl = min(ttl, t)
		}
	}
	return ttl, ttl > 0
}

// cacheCopy returns the copy of a reply kept in the cache: without OPT and
// TSIG, every TTL at most ttl.
func cacheCopy(r *dns.Msg, ttl uint32) *dns.Msg {
	c := r.Copy()
	c.Id = 0
	c.Extra = slices.DeleteFunc(c.Extra, isMeta)
	for _, sec := range [][]dns.RR{c.Answer, c.Ns, c.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl = min(h.Ttl, ttl)
		}
	}
	return c
}

func isMeta(rr dns.RR) bool {
	t := rr.Header().Rrtype
	return t == dns.TypeOPT || t == dns.TypeTSIG || t == dns.TypeSIG
}

// reply sends m, which the caller no longer uses, as the answer to req.
func (f *Forwarder) reply(w dns.ResponseWriter, req *dns.Msg, ci *clientInfo, m *dns.Msg, stale bool) {
	m.Id = req.Id
	m.Response = true
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	m.AuthenticatedData = m.AuthenticatedData && (req.AuthenticatedData || ci.do)
	m.Question = []dns.Question{req.Question[0]}
	m.Extra = slices.DeleteFunc(m.Extra, isMeta)
	if stale {
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				rr.Header().Ttl = StaleTTL
			}
		}
	}
	if ci.edns {
		opt := newOPT(ci.do)
		if stale {
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer})
		}
		m.Extra = append(m.Extra, opt)
	} else if m.Rcode > 0xF {
		m.Rcode = dns.RcodeServerFailure // an extended rcode needs OPT
	}
	m.Truncate(ci.size)
	f.write(w, req, ci, m)
}

func newOPT(do bool) *dns.OPT {
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(UDPSize)
	opt.SetDo(do)
	return opt
}

// writeError answers req with an rcode and no records; ci is nil when the
// query's EDNS is unknown.
func (f *Forwarder) writeError(w dns.ResponseWriter, req *dns.Msg, ci *clientInfo, rcode int) {
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	m.RecursionAvailable = true
	m.Rcode = rcode
	if ci != nil && len(req.Question) == 1 {
		m.Question = []dns.Question{req.Question[0]}
	}
	if ci != nil && (ci.edns || rcode == dns.RcodeBadVers) {
		m.Extra = []dns.RR{newOPT(ci.do)}
	}
	f.write(w, req, ci, m)
}

// write packs and sends m; if m does not pack, it sends SERVFAIL instead.
func (f *Forwarder) write(w dns.ResponseWriter, req *dns.Msg, ci *clientInfo, m *dns.Msg) {
	b, err := m.Pack()
	if err != nil {
		f.log.Warn("cannot pack reply; answering SERVFAIL", "name", qname(req), "err", err)
		s := new(dns.Msg)
		s.Id = req.Id
		s.Response = true
		s.Opcode = req.Opcode
		s.RecursionDesired = req.RecursionDesired
		s.Rcode = dns.RcodeServerFailure
		if b, err = s.Pack(); err != nil {
			return
		}
	}
	if _, err := w.Write(b); err != nil {
		f.log.Debug("writing dns reply", "remote", w.RemoteAddr(), "err", err)
	}
}

func qname(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return m.Question[0].Name
}

// flightGroup coalesces identical upstream queries.
type flightGroup struct {
	mu     sync.Mutex
	m      map[cacheKey]*flight
	joined atomic.Uint64 // calls that waited for another's result
}

type flight struct {
	done chan struct{}
	res  flightResult
}

// flightResult is the outcome of a resolve: an answer (err nil), or an
// error with the last rejected reply if any. msg is shared: read only.
type flightResult struct {
	msg *dns.Msg
	err error
}

// do calls fn, unless a call with the same key is in flight, whose result
// it then waits for and returns.
func (g *flightGroup) do(k cacheKey, fn func() flightResult) flightResult {
	g.mu.Lock()
	if c, ok := g.m[k]; ok {
		g.mu.Unlock()
		g.joined.Add(1)
		<-c.done
		return c.res
	}
	if g.m == nil {
		g.m = make(map[cacheKey]*flight)
	}
	c := &flight{done: make(chan struct{}), res: flightResult{err: errAborted}}
	g.m[k] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.m, k)
		g.mu.Unlock()
		close(c.done)
	}()
	c.res = fn()
	return c.res
}
