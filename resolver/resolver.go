package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
)

// Config configures a Resolver.
type Config struct {
	// Zone is the cluster domain the resolver is authoritative for;
	// "cluster.local." when empty. A trailing dot is optional.
	Zone string
	// TTL of every record, and the SOA minimum (negative caching) TTL; 30
	// seconds when zero.
	TTL uint32
	// Logger receives the resolver's logs; none when nil.
	Logger *slog.Logger
	// Forward, when set, answers queries for names outside Zone, and for
	// reverse (in-addr.arpa., ip6.arpa.) names that are not cluster records;
	// it is also asked, through an in-memory ResponseWriter, about the
	// targets outside Zone of ExternalName services (see chase.go). When
	// nil those queries are REFUSED, and such targets are not chased.
	Forward dns.Handler
	// NSAddrs are the addresses of ns.dns.<zone>, the name server the apex
	// NS record names: the cluster IP(s) of kdnsd's own DNS Service. When
	// empty, the cluster IPs of the service kube-system/kube-dns are used
	// while the View has it; with neither, ns.dns.<zone> has no addresses
	// (NODATA).
	NSAddrs []netip.Addr
	// PodMode says how <a-b-c-d>.<ns>.pod.<zone> names are answered:
	// PodInsecure (the default when empty), PodVerified or PodDisabled.
	PodMode string
	// Served, when set, is called by Update with each View as queries
	// begin to be answered from it: where the time it took a change to be
	// served (the programming latency) is measured. It is called right
	// before the View's index is published, so that whoever sees an answer
	// from it (or its AppliedIndex) finds the observation made.
	Served func(*fsm.View)
}

// Pod modes, as CoreDNS's kubernetes plugin names them.
const (
	// PodInsecure answers A/AAAA for any well-formed address in any
	// namespace, without checking that a pod has it.
	PodInsecure = "insecure"
	// PodVerified answers only for addresses that are endpoints (ready or
	// not) of a service in that namespace.
	PodVerified = "verified"
	// PodDisabled serves no pod names: everything under pod.<zone>,
	// pod.<zone> included, is NXDOMAIN.
	PodDisabled = "disabled"
)

// PodModeOf returns the pod mode in force for v: its configuration's
// (fsm.DNSConfig.PodMode) when it sets a known one, else flag.
func PodModeOf(flag string, v *fsm.View) string {
	if cfg := v.Config().Config; cfg != nil {
		switch cfg.PodMode {
		case PodInsecure, PodVerified, PodDisabled:
			return cfg.PodMode
		}
	}
	return flag
}

// Default configuration values.
const (
	DefaultZone = "cluster.local."
	DefaultTTL  = 30
)

// ViewSource is where Follow gets Views from; *fsm.Store is one.
type ViewSource interface {
	// View returns the current View.
	View() *fsm.View
	// Subscribe returns a channel that receives (coalesced) after each new
	// View, and a function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
}

// Resolver answers DNS queries for the cluster zone from the latest View it
// was given. It is safe for concurrent use.
type Resolver struct {
	log     *slog.Logger
	ttl     uint32
	forward dns.Handler
	nsAddrs []netip.Addr
	podMode string
	served  func(*fsm.View)
	// noRotate turns rotation off, for tests that compare responses byte
	// for byte.
	noRotate bool
	// chaseTimeout bounds the wait for Forward's answer about a CNAME
	// target outside the zone.
	chaseTimeout time.Duration

	// Wire names derived from the zone.
	zone    string // the apex
	svcZone string // svc.<zone>
	version string // dns-version.<zone>
	mname   string // ns.dns.<zone>
	nsZone  string // dns.<zone>
	rname   string // hostmaster.<zone>
	podZone string // pod.<zone>

	idx atomic.Pointer[index]

	mu sync.Mutex // serializes Update, and guards b
	b  dnswire.Builder
}

// New returns a Resolver that answers SERVFAIL for the zone until the first
// Update.
func New(cfg Config) (*Resolver, error) {
	zone := cfg.Zone
	if zone == "" {
		zone = DefaultZone
	}
	zw, err := zoneName(zone)
	if err != nil {
		return nil, fmt.Errorf("resolver: invalid zone %q: %w", cfg.Zone, err)
	}
	podMode := cfg.PodMode
	switch podMode {
	case "":
		podMode = PodInsecure
	case PodInsecure, PodVerified, PodDisabled:
	default:
		return nil, fmt.Errorf("resolver: pod mode %q: want %s, %s or %s", cfg.PodMode, PodInsecure, PodVerified, PodDisabled)
	}
	r := &Resolver{
		log:     cfg.Logger,
		ttl:     cfg.TTL,
		forward: cfg.Forward,
		nsAddrs: usable(nil, cfg.NSAddrs),
		podMode: podMode,
		served:  cfg.Served,
		zone:    zw,

		chaseTimeout: defaultChaseTimeout,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.ttl == 0 {
		r.ttl = DefaultTTL
	}
	var ok [6]bool
	r.svcZone, ok[0] = dnswire.Name(zw, "svc")
	r.version, ok[1] = dnswire.Name(zw, "dns-version")
	r.mname, ok[2] = dnswire.Name(zw, "ns", "dns")
	r.rname, ok[3] = dnswire.Name(zw, "hostmaster")
	r.nsZone, ok[4] = dnswire.Name(zw, "dns")
	r.podZone, ok[5] = dnswire.Name(zw, "pod")
	if ok != [6]bool{true, true, true, true, true, true} {
		return nil, fmt.Errorf("resolver: invalid zone %q: too long to hold service names", cfg.Zone)
	}
	r.b.TTL = r.ttl
	return r, nil
}

// zoneName checks a zone in presentation form and returns its wire name.
func zoneName(s string) (string, error) {
	if _, ok := dns.IsDomainName(s); !ok {
		return "", errors.New("not a domain name")
	}
	t := strings.TrimSuffix(s, ".")
	if t == "" {
		return "", errors.New("the root cannot be the cluster zone")
	}
	for _, l := range strings.Split(t, ".") {
		if !dnswire.ValidLabel(l) {
			return "", fmt.Errorf("label %q: want 1 to 63 letters, digits, hyphens or underscores", l)
		}
	}
	// Names below the zone that do not fit in 255 octets are skipped, and
	// logged, when the index is built.
	w, ok := dnswire.ParseName(t)
	if !ok {
		return "", errors.New("name too long")
	}
	return w, nil
}

// Update builds the DNS index of v and serves it from now on. Queries never
// wait for it. Services whose records v shares with the View served so far
// are not rebuilt. A nil View is ignored.
func (r *Resolver) Update(v *fsm.View) {
	if v == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.idx.Load()
	if prev != nil && prev.view == v {
		return
	}
	start := time.Now()
	next, rebuilt := r.build(prev, v)
	if r.served != nil {
		r.served(v)
	}
	r.idx.Store(next)
	services, slices := v.Counts()
	r.log.Debug("dns index updated", "index", v.Index(), "services", services, "slices", slices,
		"names", next.nodes.Len(), "rebuilt", rebuilt, "took", time.Since(start))
}

// ServeRecords serves v (Update) if it holds records, and reports whether
// it does. A View at index 0 (a store that has never applied an entry: a
// new or wiped replica) is not served: until records arrive the zone
// answers SERVFAIL, which sends clients to another server, rather than
// NXDOMAIN, which they would cache.
func (r *Resolver) ServeRecords(v *fsm.View) bool {
	if v.Index() == 0 {
		return false
	}
	r.Update(v)
	return true
}

// Follow serves src's View now and each new View it announces
// (ServeRecords), until ctx is done or src closes its notification channel.
func (r *Resolver) Follow(ctx context.Context, src ViewSource) {
	ch, cancel := src.Subscribe() // before View(), so no View is missed
	defer cancel()
	r.ServeRecords(src.View())
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			r.ServeRecords(src.View())
		}
	}
}

// AppliedIndex returns the Index of the View being served, 0 before the
// first Update.
func (r *Resolver) AppliedIndex() uint64 {
	if ix := r.idx.Load(); ix != nil {
		return ix.view.Index()
	}
	return 0
}

// bufPool holds response buffers. Most responses fit in 4 KiB; a larger
// (TCP) one is written to a buffer of its own.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// ServeDNS answers one query. It implements dns.Handler.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if req == nil || req.Response {
		return // never answer a response
	}
	bp := bufPool.Get().(*[]byte)
	out, act := r.reply((*bp)[:0], req, isTCP(w))
	switch act {
	case actAnswer:
		_, err := w.Write(out)
		if err != nil {
			r.log.Debug("writing dns response", "remote", w.RemoteAddr(), "err", err)
		}
	case actForward:
		r.forward.ServeDNS(w, req)
	case actChase:
		if b := r.chaseReply(req, isTCP(w), w.LocalAddr(), w.RemoteAddr()); b != nil {
			if _, err := w.Write(b); err != nil {
				r.log.Debug("writing dns response", "remote", w.RemoteAddr(), "err", err)
			}
		}
	}
	bufPool.Put(bp) // out, if it outgrew *bp, is left to the GC
}

func isTCP(w dns.ResponseWriter) bool {
	a := w.LocalAddr()
	return a != nil && strings.HasPrefix(a.Network(), "tcp")
}
