package resolver

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/kdnsd/kdnsd/fsm"
)

// index is the DNS form of one View. It is never modified once published.
type index struct {
	view  *fsm.View
	soa   soaData
	nodes map[string]*node // by lower-case wire name
	// services keeps each service's records with the pointers they were
	// built from, for the next build to reuse.
	services map[fsm.ServiceKey]*svcRecords
}

// node is one owner name. A node without sets and cname is an empty
// non-terminal: the name exists, but has no records.
type node struct {
	sets  []rrset  // at most one per type, in the order ANY picks from
	cname *section // answers every type (ExternalName services)
}

type rrset struct {
	typ uint16
	sec *section
}

// ent is every empty non-terminal's node.
var ent = &node{}

func (n *node) set(typ uint16) *section {
	for i := range n.sets {
		if n.sets[i].typ == typ {
			return n.sets[i].sec
		}
	}
	return nil
}

// svcRecords are the names and records of one service.
type svcRecords struct {
	svc    *fsm.Service
	slices []*fsm.EndpointSlice
	ns     string      // <ns>.svc.<zone>, an empty non-terminal
	names  []namedNode // <svc>.<ns>.svc.<zone> and the names below it; none if invalid
}

type namedNode struct {
	name string
	node *node
}

// build returns the index of v, reusing prev's records of services whose
// pointers did not change, and how many services it rebuilt.
func (r *Resolver) build(prev *index, v *fsm.View) (*index, int) {
	nsvc, _ := v.Counts()
	ix := &index{
		view:     v,
		soa:      soaData{mname: r.mname, rname: r.rname, serial: serial(v.Index()), ttl: r.ttl},
		services: make(map[fsm.ServiceKey]*svcRecords, nsvc),
	}
	rebuilt, names := 0, 0
	for s := range v.Services() {
		k := s.Key()
		sl := v.SlicesOf(k)
		rec := (*svcRecords)(nil)
		if prev != nil {
			if old := prev.services[k]; old != nil && old.svc == s && slices.Equal(old.slices, sl) {
				rec = old
			}
		}
		if rec == nil {
			rec = &svcRecords{svc: s, slices: sl, names: r.service(s, sl)}
			if len(rec.names) > 0 {
				rec.ns = rec.names[0].name[1+len(s.Name):]
			}
			rebuilt++
		}
		ix.services[k] = rec
		names += len(rec.names)
	}

	ix.nodes = make(map[string]*node, names+nsvc/4+8)
	b := &r.b
	apex := &node{}
	b.begin(r.zone)
	b.soa(r.zone, &ix.soa)
	apex.sets = append(apex.sets, rrset{typeSOA, b.finish()})
	b.begin(r.zone)
	b.nameRecord(r.zone, typeNS, r.mname)
	apex.sets = append(apex.sets, rrset{typeNS, b.finish()})
	ix.nodes[r.zone] = apex
	ix.nodes[r.svcZone] = ent
	b.begin(r.version)
	b.txt(r.version, schemaVersion)
	ix.nodes[r.version] = &node{sets: []rrset{{typeTXT, b.finish()}}}

	for k, rec := range ix.services {
		if len(rec.names) == 0 {
			continue
		}
		if ix.nodes[rec.ns] == nil {
			ix.nodes[rec.ns] = ent
		}
		for _, nn := range rec.names {
			if old := ix.nodes[nn.name]; old != nil && old != ent {
				if nn.node != ent {
					r.log.Warn("dns name of two services; keeping one", "name", presentation(nn.name),
						"namespace", k.Namespace, "service", k.Name)
				}
				continue
			}
			ix.nodes[nn.name] = nn.node
		}
	}
	return ix, rebuilt
}

// schemaVersion is the version of the Kubernetes DNS specification served,
// published as TXT at dns-version.<zone> as the specification asks.
const schemaVersion = "1.1.0"

// serial derives the SOA serial from a Raft index. Truncation is fine: serial
// arithmetic (RFC 1982) wraps, and no two Views 2^31 entries apart are ever
// compared by a client.
func serial(index uint64) uint32 { return uint32(index) }

// service returns the names and records of one service.
func (r *Resolver) service(s *fsm.Service, sl []*fsm.EndpointSlice) []namedNode {
	base, ok := wireName(r.svcZone, s.Name, s.Namespace)
	if !ok {
		r.log.Warn("service has no valid dns name; skipped", "namespace", s.Namespace, "service", s.Name)
		return nil
	}
	switch {
	case s.Type == fsm.TypeExternalName:
		return r.externalName(base, s)
	case s.Headless:
		return r.headless(base, s, sl)
	default:
		return r.clusterIP(base, s)
	}
}

func (r *Resolver) externalName(base string, s *fsm.Service) []namedNode {
	n := &node{}
	target, ok := parseName(s.ExternalName)
	if ok && target != "\x00" {
		r.b.begin(base)
		r.b.nameRecord(base, typeCNAME, target)
		n.cname = r.b.finish()
	} else {
		r.log.Warn("external name is not a valid dns name; service has no records",
			"namespace", s.Namespace, "service", s.Name, "externalName", s.ExternalName)
	}
	return []namedNode{{base, n}}
}

func (r *Resolver) clusterIP(base string, s *fsm.Service) []namedNode {
	addrs := usable(nil, s.ClusterIPs)
	out := []namedNode{{base, &node{sets: r.addrSets(base, addrs)}}}
	out = r.ports(out, base, s, func(p fsm.Port) []srvTarget {
		return []srvTarget{{port: p.Port, name: base, addrs: addrs}}
	})
	return out
}

// srvTarget is one SRV record's port and target, with the target's
// addresses for the additional section.
type srvTarget struct {
	port  uint16
	name  string
	addrs []netip.Addr
}

// ports adds the SRV names of s's named ports, with targets from targets,
// and the _<proto> empty non-terminals above them.
func (r *Resolver) ports(out []namedNode, base string, s *fsm.Service, targets func(fsm.Port) []srvTarget) []namedNode {
	for _, p := range s.Ports {
		if p.Name == "" {
			continue // only named ports have SRV records
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		name, ok := wireName(base, "_"+p.Name, "_"+proto)
		if !ok {
			r.log.Warn("service port has no valid dns name; skipped", "namespace", s.Namespace,
				"service", s.Name, "port", p.Name, "protocol", p.Protocol)
			continue
		}
		if slices.ContainsFunc(out, func(n namedNode) bool { return n.name == name }) {
			continue // a duplicate port name
		}
		ts := targets(p)
		n := ent
		if len(ts) > 0 {
			n = &node{sets: []rrset{{typeSRV, r.srvSet(name, ts)}}}
		}
		out = append(out, namedNode{name, n})
		if parent := name[2+len(p.Name):]; !slices.ContainsFunc(out, func(n namedNode) bool { return n.name == parent }) {
			out = append(out, namedNode{parent, ent})
		}
	}
	return out
}

// srvSet builds an SRV RRset with the targets' addresses as additional
// records. The weights are equal, so clients spread evenly; they add up to
// about 100.
func (r *Resolver) srvSet(owner string, ts []srvTarget) *section {
	b := &r.b
	b.begin(owner)
	weight := uint16(max(1, 100/len(ts)))
	for _, t := range ts {
		b.srv(owner, 0, weight, t.port, t.name)
	}
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if seen[t.name] {
			continue
		}
		seen[t.name] = true
		for _, a := range t.addrs {
			b.addr(true, t.name, a)
		}
	}
	return b.finish()
}

// addrSets returns the A and the AAAA RRset of owner, leaving out an empty one.
func (r *Resolver) addrSets(owner string, addrs []netip.Addr) []rrset {
	var sets []rrset
	for _, typ := range [2]uint16{typeA, typeAAAA} {
		r.b.begin(owner)
		found := false
		for _, a := range addrs {
			if a.Is4() == (typ == typeA) {
				r.b.addr(false, owner, a)
				found = true
			}
		}
		if found {
			sets = append(sets, rrset{typ, r.b.finish()})
		}
	}
	return sets
}

// usable appends to dst the addresses of as that can be published, unmapped
// and without duplicates.
func usable(dst []netip.Addr, as []netip.Addr) []netip.Addr {
	for _, a := range as {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap().WithZone("")
		if !slices.Contains(dst, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

// headless returns the names of a headless service: the service name with
// every published endpoint address, one name per endpoint (its hostname, or
// its dashed address when it has none), and SRV records per named port
// pointing at those endpoint names.
func (r *Resolver) headless(base string, s *fsm.Service, sl []*fsm.EndpointSlice) []namedNode {
	var all []netip.Addr
	inAll := map[netip.Addr]bool{}
	// Endpoint names in order of first appearance, with their addresses.
	var order []string
	addrsOf := map[string][]netip.Addr{}
	// targets[i] lists the endpoint names of slice i, for its SRV records.
	targets := make([][]string, len(sl))
	add := func(i int, name string, a netip.Addr) {
		if _, ok := addrsOf[name]; !ok {
			order = append(order, name)
		}
		if !slices.Contains(addrsOf[name], a) {
			addrsOf[name] = append(addrsOf[name], a)
		}
		if !slices.Contains(targets[i], name) {
			targets[i] = append(targets[i], name)
		}
	}
	var buf []netip.Addr
	for i, e := range sl {
		for j := range e.Endpoints {
			ep := &e.Endpoints[j]
			if !ep.Ready && !s.PublishNotReadyAddresses {
				continue
			}
			host := ""
			if ep.Hostname != "" {
				var ok bool
				if host, ok = wireName(base, ep.Hostname); !ok {
					r.log.Warn("endpoint hostname is not a valid dns label; using its address",
						"namespace", s.Namespace, "service", s.Name, "hostname", ep.Hostname)
				}
			}
			buf = usable(buf[:0], ep.Addresses)
			for _, a := range buf {
				if !inAll[a] {
					inAll[a] = true
					all = append(all, a)
				}
				name := host
				if name == "" {
					var ok bool
					if name, ok = wireName(base, dashed(a)); !ok {
						continue // base is too long for one more label
					}
				}
				add(i, name, a)
			}
		}
	}

	out := []namedNode{{base, &node{sets: r.addrSets(base, all)}}}
	for _, name := range order {
		out = append(out, namedNode{name, &node{sets: r.addrSets(name, addrsOf[name])}})
	}
	return r.ports(out, base, s, func(p fsm.Port) []srvTarget {
		var ts []srvTarget
		type key struct {
			port uint16
			name string
		}
		seen := map[key]bool{}
		for i, e := range sl {
			k := slices.IndexFunc(e.Ports, func(q fsm.Port) bool { return q.Name == p.Name })
			if k < 0 || e.Ports[k].Port == 0 {
				continue
			}
			for _, name := range targets[i] {
				if k := (key{e.Ports[k].Port, name}); !seen[k] {
					seen[k] = true
					ts = append(ts, srvTarget{port: k.port, name: name, addrs: addrsOf[name]})
				}
			}
		}
		return ts
	})
}
