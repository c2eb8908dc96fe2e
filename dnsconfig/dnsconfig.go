// Package dnsconfig reads the cluster DNS configuration an operator writes
// in one ConfigMap into an fsm.DNSConfig, and refuses a ConfigMap with any
// mistake as a whole, naming every mistake: a configuration half applied
// would be worse than the last good one.
//
// # The ConfigMap
//
// Every key is optional; a key left out keeps the replica's flag (--upstream,
// --stub-domain, --ttl, --pod-mode, --cache-size; negativeTTL: the
// forwarder's default cap of 5 minutes). Any other key is refused, so that
// a misspelt key is not silently ignored.
//
//	apiVersion: v1
//	kind: ConfigMap
//	metadata: {name: kdnsd, namespace: kube-system}
//	data:
//	  upstreams: "10.0.0.53 10.0.0.54:5353"   # ip[:port], spaces or commas
//	  stubDomains: |                          # domain, then its servers
//	    corp.example 10.1.0.53 10.1.0.54:5353
//	  records: |                              # zone-file lines
//	    db.corp.example.          A     10.1.2.3
//	    db.corp.example.    60    AAAA  fd00::3
//	    www.corp.example.         CNAME db.corp.example.
//	    _ldap._tcp.corp.example.  SRV   0 10 389 db.corp.example.
//	    corp.example.             TXT   "v=spf1 -all"
//	    3.2.1.10.in-addr.arpa.    PTR   db.corp.example.
//	    registry.cluster.local.   A     10.1.2.4
//	  ttl: "30"              # seconds, cluster records
//	  podMode: insecure      # insecure, verified or disabled
//	  negativeTTL: "60"      # seconds, cap on cached negative answers
//	  cacheSize: "10000"     # cached answers; negative: no cache
//
// Records are lines of a zone file (RFC 1035 section 5): owner, optional
// TTL and class IN, type, data. Names are absolute whether or not they end
// in a dot, made of letters, digits, hyphens and underscores (no
// wildcards); '#' and ';' start comments; $ directives are refused. The
// types are A, AAAA, CNAME, TXT, SRV and PTR. A record without TTL (or TTL 0)
// takes the cluster records' TTL in force. A CNAME is alone at its name
// (RFC 1034 section 3.6.2).
//
// Under the cluster zone a record may not take the names kdnsd answers
// itself: the apex, dns-version, dns and ns.dns, svc and namespaces
// (<ns>.svc), and pod and everything below it. A record at or under a
// Service's name (<svc>.<ns>.svc.<zone>) is refused by CheckServices while
// that Service exists; should the Service appear later, it wins at that name
// (package resolver).
package dnsconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
)

// The ConfigMap's keys.
const (
	KeyUpstreams   = "upstreams"
	KeyStubDomains = "stubDomains"
	KeyRecords     = "records"
	KeyTTL         = "ttl"
	KeyPodMode     = "podMode"
	KeyNegativeTTL = "negativeTTL"
	KeyCacheSize   = "cacheSize"
)

var keys = []string{KeyUpstreams, KeyStubDomains, KeyRecords, KeyTTL, KeyPodMode, KeyNegativeTTL, KeyCacheSize}

// Pod modes, as package resolver names them.
var podModes = []string{"insecure", "verified", "disabled"}

// maxTTL is the largest TTL RFC 2181 section 8 allows.
const maxTTL = 1<<31 - 1

// Parse reads a ConfigMap's data for cluster zone zone (e.g.
// "cluster.local."). source says where the data came from and is kept in the
// result. The error lists every mistake, one per line, each with its key
// (and line of a multi-line key).
func Parse(data map[string]string, zone, source string) (*fsm.DNSConfig, error) {
	zone = dns.CanonicalName(zone)
	p := &parser{zone: zone, cfg: &fsm.DNSConfig{Source: source}}
	for _, k := range sortedKeys(data) {
		v := data[k]
		switch k {
		case KeyUpstreams:
			p.cfg.Upstreams = p.servers(k, 0, strings.FieldsFunc(v, isSeparator))
			if len(p.cfg.Upstreams) == 0 {
				p.fail(k, 0, "no server: leave the key out to keep --upstream")
			}
		case KeyStubDomains:
			p.stubDomains(v)
		case KeyRecords:
			p.records(v)
		case KeyTTL:
			p.cfg.TTL = p.seconds(k, v)
		case KeyNegativeTTL:
			p.cfg.NegativeTTL = p.seconds(k, v)
		case KeyPodMode:
			if m := strings.TrimSpace(v); slices.Contains(podModes, m) {
				p.cfg.PodMode = m
			} else {
				p.fail(k, 0, "%q: want %s", v, strings.Join(podModes, ", "))
			}
		case KeyCacheSize:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err != nil:
				p.fail(k, 0, "%q is not a whole number", v)
			case n == 0:
				p.fail(k, 0, "0: leave the key out to keep --cache-size, or give a negative number for no cache")
			default:
				p.cfg.CacheSize = n
			}
		default:
			p.fail(k, 0, "unknown key; the keys are %s", strings.Join(keys, ", "))
		}
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("%s: %w", source, errors.Join(p.errs...))
	}
	return p.cfg, nil
}

type parser struct {
	zone string
	cfg  *fsm.DNSConfig
	errs []error
}

func (p *parser) fail(key string, line int, format string, args ...any) {
	where := fmt.Sprintf("key %q", key)
	if line > 0 {
		where += fmt.Sprintf(" line %d", line)
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func isSeparator(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// servers checks ip[:port] servers and returns them as given.
func (p *parser) servers(key string, line int, list []string) []string {
	for _, s := range list {
		if _, err := netip.ParseAddrPort(s); err == nil {
			continue
		}
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			p.fail(key, line, "server %q: want an IP address, with a port or without one (53)", s)
		}
	}
	return list
}

func (p *parser) seconds(key, v string) uint32 {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil || n == 0 || n > maxTTL {
		p.fail(key, 0, "%q: want seconds, 1 to %d", v, maxTTL)
		return 0
	}
	return uint32(n)
}

// lines yields the non-empty lines of v without comments, numbered from 1.
func lines(v string, comment string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		for i, l := range strings.Split(v, "\n") {
			if j := strings.IndexAny(l, comment); j >= 0 {
				l = l[:j]
			}
			if l = strings.TrimSpace(l); l != "" && !yield(i+1, l) {
				return
			}
		}
	}
}

func (p *parser) stubDomains(v string) {
	seen := map[string]bool{}
	given := false
	for n, l := range lines(v, "#") {
		given = true
		f := strings.FieldsFunc(l, isSeparator)
		if len(f) < 2 {
			p.fail(KeyStubDomains, n, "%q: want a domain and its servers", l)
			continue
		}
		d, ok := p.name(KeyStubDomains, n, f[0])
		if !ok {
			continue
		}
		if dns.IsSubDomain(p.zone, d) {
			p.fail(KeyStubDomains, n, "%s is in the cluster zone %s, which kdnsd answers itself", d, p.zone)
			continue
		}
		if seen[d] {
			p.fail(KeyStubDomains, n, "%s is given twice", d)
			continue
		}
		seen[d] = true
		p.cfg.StubDomains = append(p.cfg.StubDomains, fsm.StubDomain{Domain: d, Servers: p.servers(KeyStubDomains, n, f[1:])})
	}
	if !given {
		p.fail(KeyStubDomains, 0, "no stub domain: leave the key out to keep --stub-domain")
	}
	slices.SortFunc(p.cfg.StubDomains, func(a, b fsm.StubDomain) int { return strings.Compare(a.Domain, b.Domain) })
}

// name checks a domain name and returns it canonical: lower case, absolute.
func (p *parser) name(key string, line int, s string) (string, bool) {
	if _, ok := dns.IsDomainName(s); !ok {
		p.fail(key, line, "%q is not a domain name", s)
		return "", false
	}
	return dns.CanonicalName(s), true
}

// recordTypes are the types a custom record may have.
var recordTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeSRV, dns.TypePTR}

func (p *parser) records(v string) {
	type key struct {
		name string
		typ  uint16
	}
	lineOf := map[fsm.Record]int{}
	types := map[string][]uint16{}
	given := false
	for n, l := range lines(v, "#;") {
		given = true
		if strings.HasPrefix(l, "$") {
			p.fail(KeyRecords, n, "%q: directives are not allowed; write absolute names and a TTL per record", l)
			continue
		}
		zp := dns.NewZoneParser(strings.NewReader(l), ".", "")
		zp.SetDefaultTTL(0)
		rr, ok := zp.Next()
		if err := zp.Err(); err != nil || !ok {
			p.fail(KeyRecords, n, "%q: %v", l, zoneError(err))
			continue
		}
		h := rr.Header()
		if !slices.Contains(recordTypes, h.Rrtype) {
			p.fail(KeyRecords, n, "type %s: want A, AAAA, CNAME, TXT, SRV or PTR", dns.TypeToString[h.Rrtype])
			continue
		}
		if h.Class != dns.ClassINET {
			p.fail(KeyRecords, n, "class %s: want IN", dns.ClassToString[h.Class])
			continue
		}
		h.Name = dns.CanonicalName(h.Name)
		if l := badLabel(h.Name); l != "" {
			p.fail(KeyRecords, n, "%s: label %q: want 1 to 63 letters, digits, hyphens or underscores (no wildcards)", h.Name, l)
			continue
		}
		if why := p.reserved(h.Name); why != "" {
			p.fail(KeyRecords, n, "%s: %s", h.Name, why)
			continue
		}
		rec := fsm.Record{Name: h.Name, Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl,
			Data: strings.TrimPrefix(rr.String(), h.String())}
		if first, dup := lineOf[rec]; dup {
			p.fail(KeyRecords, n, "the same record as line %d", first)
			continue
		}
		have := types[h.Name]
		if h.Rrtype == dns.TypeCNAME && len(have) > 0 || slices.Contains(have, dns.TypeCNAME) {
			p.fail(KeyRecords, n, "%s has a CNAME and other records; a CNAME is alone at its name", h.Name)
			continue
		}
		lineOf[rec] = n
		types[h.Name] = append(have, h.Rrtype)
		p.cfg.Records = append(p.cfg.Records, rec)
	}
	if !given {
		p.fail(KeyRecords, 0, "no record: leave the key out for none")
	}
}

// badLabel returns the first label of name the resolver cannot serve
// (one needing escapes, or a wildcard), or "".
func badLabel(name string) string {
	for _, l := range dns.SplitDomainName(name) {
		ok := len(l) <= 63
		for _, c := range []byte(l) {
			ok = ok && ('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_')
		}
		if !ok {
			return l
		}
	}
	return ""
}

// zoneError shortens the zone parser's error to its message.
func zoneError(err error) string {
	var pe *dns.ParseError
	if errors.As(err, &pe) {
		return strings.TrimPrefix(pe.Error(), "dns: ")
	}
	if err == nil {
		return "not a record"
	}
	return err.Error()
}

// reserved says why name, in the cluster zone, is kdnsd's own; "" if it may
// hold a custom record.
func (p *parser) reserved(name string) string {
	if !dns.IsSubDomain(p.zone, name) {
		return ""
	}
	below := strings.TrimSuffix(strings.TrimSuffix(name, p.zone), ".")
	labels := dns.SplitDomainName(below)
	switch {
	case len(labels) == 0:
		return "the cluster zone's apex is kdnsd's (SOA, NS)"
	case below == "dns-version" || below == "dns" || below == "ns.dns":
		return "kdnsd answers this name itself (Kubernetes DNS specification)"
	case labels[len(labels)-1] == "pod":
		return "pod names are kdnsd's (--pod-mode)"
	case labels[len(labels)-1] == "svc" && len(labels) <= 2:
		return "svc and namespace names are kdnsd's"
	}
	return ""
}

// CheckServices refuses cfg if one of its records is at or under the name
// of a Service that v holds (<svc>.<ns>.svc.<zone>): that name is the
// Service's.
func CheckServices(cfg *fsm.DNSConfig, zone string, v *fsm.View) error {
	if cfg == nil {
		return nil
	}
	svcZone := "svc." + dns.CanonicalName(zone)
	var errs []error
	for _, r := range cfg.Records {
		if !dns.IsSubDomain(svcZone, r.Name) {
			continue
		}
		labels := dns.SplitDomainName(strings.TrimSuffix(r.Name, svcZone))
		if len(labels) < 2 {
			continue
		}
		k := fsm.ServiceKey{Namespace: labels[len(labels)-1], Name: labels[len(labels)-2]}
		if v.Service(k) != nil {
			errs = append(errs, fmt.Errorf("key %q: %s %s collides with Service %s/%s, whose name it is", KeyRecords, r.Name, r.Type, k.Namespace, k.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", cfg.Source, errors.Join(errs...))
	}
	return nil
}

// Setting is one value in force and where it came from.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// From is "flag" (the replica's flag or its default) or the source of
	// the committed configuration (namespace/name@resourceVersion).
	From string `json:"from"`
}

// InForce returns the configuration in force: st's committed one where it
// sets a value, flags elsewhere (flags.Records are ignored: custom records
// come from the ConfigMap alone), with each value and its origin. st may be
// nil.
func InForce(flags *fsm.DNSConfig, st *fsm.ConfigState) (*fsm.DNSConfig, []Setting) {
	out := *flags
	out.Source, out.Records = "flags", nil
	c := &fsm.DNSConfig{} // the committed configuration, sets nothing if none
	if st != nil && st.Config != nil {
		c = st.Config
		out.Source = c.Source
	}
	var settings []Setting
	// pick takes the committed value if set is true, and records the value
	// in force as show prints it.
	pick := func(key string, set bool, take func(), show func() string) {
		from := "flag"
		if set {
			take()
			from = c.Source
		}
		settings = append(settings, Setting{Key: key, Value: show(), From: from})
	}
	pick(KeyUpstreams, len(c.Upstreams) > 0, func() { out.Upstreams = c.Upstreams }, func() string {
		if len(out.Upstreams) == 0 {
			return "(the nameservers of --resolv-conf)"
		}
		return strings.Join(out.Upstreams, " ")
	})
	pick(KeyStubDomains, len(c.StubDomains) > 0, func() { out.StubDomains = c.StubDomains }, func() string {
		var parts []string
		for _, s := range out.StubDomains {
			parts = append(parts, s.Domain+" "+strings.Join(s.Servers, " "))
		}
		return strings.Join(parts, "; ")
	})
	pick(KeyRecords, len(c.Records) > 0, func() { out.Records = c.Records }, func() string {
		return fmt.Sprintf("%d", len(out.Records))
	})
	pick(KeyTTL, c.TTL != 0, func() { out.TTL = c.TTL }, func() string { return fmt.Sprint(out.TTL) })
	pick(KeyPodMode, c.PodMode != "", func() { out.PodMode = c.PodMode }, func() string { return out.PodMode })
	pick(KeyNegativeTTL, c.NegativeTTL != 0, func() { out.NegativeTTL = c.NegativeTTL }, func() string {
		if out.NegativeTTL == 0 {
			return "(forwarder default)"
		}
		return fmt.Sprint(out.NegativeTTL)
	})
	pick(KeyCacheSize, c.CacheSize != 0, func() { out.CacheSize = c.CacheSize }, func() string { return fmt.Sprint(out.CacheSize) })
	return &out, settings
}
