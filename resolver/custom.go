package resolver

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
)

// Custom records: the static records of the cluster's DNS configuration
// (fsm.DNSConfig.Records, validated by package dnsconfig), built into the
// same precomputed index as the cluster's records and answered the same way.
//
//   - In the cluster zone a name is the custom record's unless a Service's
//     records hold it: the Service wins (the leader refuses such a
//     configuration while the Service exists; one created later takes the
//     name back), and the names above a custom one exist (empty
//     non-terminals), as above a Service's.
//   - In the reverse zones a custom PTR answers like a cluster one; an
//     address a Service holds keeps the Service's PTR.
//   - Elsewhere a name with custom records is answered authoritatively from
//     them (NODATA without SOA for other types, as the configuration holds no
//     zone to cite); every other name there is forwarded as before.

// customOrder is the order of a name's RRsets, the one ANY picks from.
var customOrder = []uint16{dnswire.TypeA, dnswire.TypeAAAA, dnswire.TypeCNAME, dnswire.TypeTXT, dnswire.TypeSRV, dnswire.TypePTR}

// custom is the built form of one configuration's records, reused by the
// next build while the configuration and TTL stay.
type custom struct {
	cfg   *fsm.DNSConfig
	ttl   uint32
	names []namedNode // in the cluster or reverse zones
	other map[string]*node
}

// buildCustom builds cfg's records; ttl is that of records without one. It
// runs once per configuration, so it also says what of cfg this build
// cannot serve.
func (r *Resolver) buildCustom(cfg *fsm.DNSConfig, ttl uint32) *custom {
	c := &custom{cfg: cfg, ttl: ttl, other: map[string]*node{}}
	if cfg == nil {
		return c
	}
	switch cfg.PodMode {
	case "", PodInsecure, PodVerified, PodDisabled:
	default: // from a newer build, or corruption; dnsconfig refuses it
		r.log.Warn("configured pod mode unknown to this build; keeping --pod-mode", "pod_mode", cfg.PodMode, "source", cfg.Source)
	}
	type rrsetKey struct {
		name string
		typ  uint16
	}
	var names []string
	sets := map[rrsetKey][][]byte{} // packed RDATA per RRset
	ttls := map[rrsetKey]uint32{}   // an RRset's TTL: its first record's (RFC 2181 section 5.2)
	for _, rec := range cfg.Records {
		rr, err := dns.NewRR(rec.Name + " 0 IN " + rec.Type + " " + rec.Data)
		name, ok := dnswire.ParseName(strings.ToLower(rec.Name))
		if err != nil || rr == nil || !ok || !slices.Contains(customOrder, rr.Header().Rrtype) {
			r.log.Warn("custom record cannot be served; skipped", "name", rec.Name, "type", rec.Type, "data", rec.Data, "err", err)
			continue
		}
		rdata, ok := packRdata(rr)
		if !ok {
			r.log.Warn("custom record cannot be served; skipped", "name", rec.Name, "type", rec.Type, "data", rec.Data)
			continue
		}
		k := rrsetKey{name, rr.Header().Rrtype}
		if _, ok := sets[k]; !ok {
			ttls[k] = rec.TTL
			if rec.TTL == 0 {
				ttls[k] = ttl
			}
		}
		if !slices.ContainsFunc(names, func(n string) bool { return n == name }) {
			names = append(names, name)
		}
		sets[k] = append(sets[k], rdata)
	}
	b := &r.b
	defer func(saved uint32) { b.TTL = saved }(b.TTL)
	for _, name := range names {
		// The CNAME first, where node.cname finds it: it answers every
		// type, so the other RRsets keep customOrder.
		types := slices.DeleteFunc(slices.Clone(customOrder), func(typ uint16) bool { return len(sets[rrsetKey{name, typ}]) == 0 })
		if i := slices.Index(types, dnswire.TypeCNAME); i > 0 {
			types = slices.Insert(slices.Delete(types, i, i+1), 0, dnswire.TypeCNAME)
		}
		n := &node{}
		for _, typ := range types {
			rdatas := sets[rrsetKey{name, typ}]
			b.TTL = ttls[rrsetKey{name, typ}]
			b.Begin(name)
			for _, rd := range rdatas {
				writeCustom(b, name, typ, rd)
			}
			switch typ {
			case dnswire.TypeCNAME: // alone at its name (dnsconfig checks)
				b.Finish(n.add(), typ)
			case dnswire.TypeA, dnswire.TypeAAAA, dnswire.TypeSRV:
				b.FinishRotating(n.add(), typ)
			default:
				b.Finish(n.add(), typ)
			}
		}
		if r.classify([]byte(name)) == zoneOther {
			c.other[name] = n
			continue
		}
		c.names = append(c.names, namedNode{name: name, node: n})
	}
	return c
}

// packRdata returns rr's RDATA in wire form, names uncompressed and
// lower-cased as the index's are.
func packRdata(rr dns.RR) ([]byte, bool) {
	buf := make([]byte, dns.Len(rr)+dnswire.MaxNameLen)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, false
	}
	// The header: the owner name, type, class, TTL and RDLENGTH.
	_, hdr, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil || hdr+10 > off {
		return nil, false
	}
	rd := buf[hdr+10 : off]
	switch rr.Header().Rrtype {
	case dnswire.TypeCNAME, dnswire.TypePTR:
		return lowerName(rd), true
	case dnswire.TypeSRV:
		return append(rd[:6:6], lowerName(rd[6:])...), true
	}
	return rd, true
}

// lowerName returns a copy of the wire name w in lower case.
func lowerName(w []byte) []byte {
	out := make([]byte, len(w))
	for i, c := range w {
		out[i] = dnswire.Lower(c)
	}
	return out
}

// writeCustom writes one answer record of type typ with the RDATA rd that
// packRdata made.
func writeCustom(b *dnswire.Builder, owner string, typ uint16, rd []byte) {
	switch typ {
	case dnswire.TypeA, dnswire.TypeAAAA:
		a, _ := netip.AddrFromSlice(rd)
		b.Addr(false, owner, a)
	case dnswire.TypeCNAME, dnswire.TypePTR:
		b.NameRecord(owner, typ, string(rd))
	case dnswire.TypeSRV:
		be := binary.BigEndian
		b.SRV(owner, be.Uint16(rd), be.Uint16(rd[2:]), be.Uint16(rd[4:]), string(rd[6:]))
	case dnswire.TypeTXT:
		var texts []string
		for len(rd) > 0 && 1+int(rd[0]) <= len(rd) {
			texts = append(texts, string(rd[1:1+int(rd[0])]))
			rd = rd[1+int(rd[0]):]
		}
		b.TXT(owner, texts...)
	}
}

// addCustom puts c's names of the cluster and reverse zones into base,
// which holds the index's own names, and the empty non-terminals above
// those in the zone; those at a name a service claims are not served.
func (r *Resolver) addCustom(u *update, base map[string]*node, c *custom) {
	ix := u.ix
	for _, nn := range c.names {
		if base[nn.name] != nil || u.claimed(nn.name) {
			r.log.Warn("custom record at a name the cluster's records hold; the Service's records are served",
				"name", dnswire.Presentation(nn.name))
			ix.shadowed++
			continue
		}
		base[nn.name] = nn.node
		if r.classify([]byte(nn.name)) != zoneCluster {
			continue
		}
		for p := nn.name[1+int(nn.name[0]):]; len(p) > len(r.zone) && base[p] == nil; p = p[1+int(p[0]):] {
			base[p] = ent
		}
	}
}

// outsideNode returns the custom node of key, a name outside the cluster
// and reverse zones, or nil. ix may be nil (no View yet).
func (ix *index) outsideNode(key []byte) *node {
	if ix == nil || ix.custom == nil {
		return nil
	}
	return ix.custom.other[string(key)]
}

// answerOutside answers q from n, custom records of a name outside the
// cluster and reverse zones: as in the zone, but NODATA without SOA.
func (r *Resolver) answerOutside(m *dnswire.Response, ix *index, n *node, key []byte, q *query, limit int) ([]byte, action) {
	if q.Qclass != dnswire.ClassIN || q.Qtype == dnswire.TypeAXFR || q.Qtype == dnswire.TypeIXFR {
		return r.outside(m)
	}
	m.Flags |= dnswire.FlagAA
	sec := n.cname()
	if sec != nil && !q.noChase && chases(q.Qtype) && r.chased(ix, n, sec, key) {
		return nil, actChase
	}
	if sec == nil {
		if q.Qtype == dnswire.TypeANY {
			sec = n.first()
		} else {
			sec = n.set(q.Qtype)
		}
	}
	if sec != nil {
		m.AppendAnswer(sec, limit, !r.noRotate)
	}
	return m.Done(), actAnswer
}
