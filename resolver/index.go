package resolver

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
)

// index is the DNS form of one View. It is never modified once published.
type index struct {
	view  *fsm.View
	soa   dnswire.SOA
	nodes map[string]*node // by lower-case wire name
	// services keeps each service's records with the pointers they were
	// built from, for the next build to reuse.
	services map[fsm.ServiceKey]*svcRecords
	// namespacesFromView: the View holds every namespace, so a pod name in
	// another one does not exist. podsFromView: in verified mode, pod names
	// are answered per query from the View's pods; endpointPods: in
	// verified mode while the View holds no pods in full (a cluster still
	// writing an older command format, or a leader not in verified mode),
	// pod names are those of the services' endpoint addresses, as releases
	// before pods were replicated answered.
	namespacesFromView, podsFromView, endpointPods bool
	// ttl and podMode are those in force for this View: the configuration's
	// (fsm.DNSConfig), else Config's.
	ttl     uint32
	podMode string
	// custom holds the configuration's custom records; shadowed counts
	// those not served because a Service's records hold their name.
	custom   *custom
	shadowed int
}

// node is one owner name. A node without sets and cname is an empty
// non-terminal: the name exists, but has no records.
type node struct {
	sets  []rrset          // at most one per type, in the order ANY picks from
	cname *dnswire.Section // answers every type (ExternalName services)
	// cnameInZone: cname's target is in the cluster zone, where it is
	// chased without Config.Forward.
	cnameInZone bool
}

type rrset struct {
	typ uint16
	sec *dnswire.Section
}

// ent is every empty non-terminal's node.
var ent = &node{}

func (n *node) set(typ uint16) *dnswire.Section {
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
	ns     string      // <ns>.svc.<zone>, an empty non-terminal; "" if the service's name is invalid
	names  []namedNode // <svc>.<ns>.svc.<zone> and the names below it, if it has records
}

type namedNode struct {
	name string
	node *node
	// rank, when set, settles which of two services' nodes of the same
	// name is served, without a warning: the smaller. PTR records and pod
	// names, which several services may legitimately share, have one.
	rank string
}

// build returns the index of v, reusing prev's records of services whose
// pointers did not change, and how many services it rebuilt.
func (r *Resolver) build(prev *index, v *fsm.View) (*index, int) {
	nsvc, _ := v.Counts()
	tracked := v.Tracked()
	ttl, podMode := r.ttl, PodModeOf(r.podMode, v)
	cfg := v.Config().Config
	if cfg != nil && cfg.TTL != 0 {
		ttl = cfg.TTL
	}
	r.b.TTL = ttl
	ix := &index{
		view:               v,
		soa:                dnswire.SOA{MName: r.mname, RName: r.rname, Serial: serial(v.Index()), TTL: ttl},
		services:           make(map[fsm.ServiceKey]*svcRecords, nsvc),
		namespacesFromView: tracked.Namespaces,
		podsFromView:       tracked.Pods && podMode == PodVerified,
		endpointPods:       !tracked.Pods && podMode == PodVerified,
		ttl:                ttl,
		podMode:            podMode,
	}
	rebuilt, names := 0, 0
	for s := range v.Services() {
		k := s.Key()
		sl := v.SlicesOf(k)
		rec := (*svcRecords)(nil)
		if prev != nil && prev.endpointPods == ix.endpointPods && prev.ttl == ix.ttl {
			if old := prev.services[k]; old != nil && old.svc == s && slices.Equal(old.slices, sl) {
				rec = old
			}
		}
		if rec == nil {
			rec = &svcRecords{svc: s, slices: sl}
			rec.ns, rec.names = r.service(s, sl, ix.endpointPods)
			rebuilt++
		}
		ix.services[k] = rec
		names += len(rec.names)
	}

	ix.nodes = make(map[string]*node, names+nsvc/4+8)
	b := &r.b
	nsAddrs := r.nsAddrs
	if len(nsAddrs) == 0 {
		if s := v.Service(fsm.ServiceKey{Namespace: "kube-system", Name: "kube-dns"}); s != nil && !s.Headless && s.Type != fsm.TypeExternalName {
			nsAddrs = usable(nil, s.ClusterIPs)
		}
	}
	apex := &node{}
	b.Begin(r.zone)
	b.SOA(r.zone, &ix.soa)
	apex.sets = append(apex.sets, rrset{dnswire.TypeSOA, b.Finish()})
	b.Begin(r.zone)
	b.NameRecord(r.zone, dnswire.TypeNS, r.mname)
	for _, a := range nsAddrs {
		b.Addr(true, r.mname, a) // glue
	}
	apex.sets = append(apex.sets, rrset{dnswire.TypeNS, b.Finish()})
	ix.nodes[r.zone] = apex
	ix.nodes[r.svcZone] = ent
	ix.nodes[r.nsZone] = ent
	ix.nodes[r.mname] = &node{sets: r.addrSets(r.mname, nsAddrs)}
	if podMode == PodInsecure || ix.podsFromView && v.HasPods() {
		ix.nodes[r.podZone] = ent
	}
	b.Begin(r.version)
	b.TXT(r.version, schemaVersion)
	ix.nodes[r.version] = &node{sets: []rrset{{dnswire.TypeTXT, b.Finish()}}}

	ranks := map[string]string{}
	for k, rec := range ix.services {
		if rec.ns == "" {
			continue
		}
		if ix.nodes[rec.ns] == nil {
			ix.nodes[rec.ns] = ent
		}
		for _, nn := range rec.names {
			old := ix.nodes[nn.name]
			switch {
			case old == nil || old == ent:
			case nn.node == ent:
				continue
			case nn.rank != "":
				if kept, ok := ranks[nn.name]; ok && kept <= nn.rank {
					continue
				}
			default:
				r.log.Warn("dns name of two services; keeping one", "name", dnswire.Presentation(nn.name),
					"namespace", k.Namespace, "service", k.Name)
				continue
			}
			ix.nodes[nn.name] = nn.node
			if nn.rank != "" {
				ranks[nn.name] = nn.rank
			}
		}
	}
	c := (*custom)(nil)
	if prev != nil && prev.custom != nil && prev.custom.cfg == cfg && prev.custom.ttl == ttl {
		c = prev.custom
	} else {
		c = r.buildCustom(cfg, ttl)
	}
	r.addCustom(ix, c)
	return ix, rebuilt
}

// schemaVersion is the version of the Kubernetes DNS specification served,
// published as TXT at dns-version.<zone> as the specification asks.
const schemaVersion = "1.1.0"

// serial derives the SOA serial from a Raft index. Truncation is fine: serial
// arithmetic (RFC 1982) wraps, and no two Views 2^31 entries apart are ever
// compared by a client.
func serial(index uint64) uint32 { return uint32(index) }

// service returns the name of the namespace of one service, which exists
// whatever the service's records, and the service's names and records, with
// the pod names of its endpoint addresses if endpointPods.
func (r *Resolver) service(s *fsm.Service, sl []*fsm.EndpointSlice, endpointPods bool) (ns string, names []namedNode) {
	base, ok := dnswire.Name(r.svcZone, s.Name, s.Namespace)
	if !ok {
		r.log.Warn("service has no valid dns name; skipped", "namespace", s.Namespace, "service", s.Name)
		return "", nil
	}
	ns = base[1+len(s.Name):]
	var out []namedNode
	switch {
	case s.Type == fsm.TypeExternalName:
		out = r.externalName(base, s)
	case s.Headless:
		out = r.headless(base, s, sl)
	default:
		out = r.clusterIP(base, s)
	}
	if endpointPods {
		out = r.verifiedPods(out, s, sl)
	}
	return ns, out
}

// verifiedPods adds <a-b-c-d>.<ns>.pod.<zone> for every endpoint address,
// ready or not, of the service's slices, and the empty non-terminals above.
func (r *Resolver) verifiedPods(out []namedNode, s *fsm.Service, sl []*fsm.EndpointSlice) []namedNode {
	nsName, ok := dnswire.Name(r.podZone, s.Namespace)
	if !ok {
		return out
	}
	seen := map[netip.Addr]bool{}
	var buf []netip.Addr
	for _, e := range sl {
		for j := range e.Endpoints {
			buf = usable(buf[:0], e.Endpoints[j].Addresses)
			for _, a := range buf {
				if seen[a] {
					continue
				}
				seen[a] = true
				name, ok := dnswire.Name(nsName, dashed(a))
				if !ok {
					continue
				}
				out = append(out, namedNode{name: name, node: &node{sets: r.addrSets(name, []netip.Addr{a})}, rank: "pod"})
			}
		}
	}
	if len(seen) > 0 {
		out = append(out, namedNode{name: nsName, node: ent}, namedNode{name: r.podZone, node: ent})
	}
	return out
}

// ptr returns the PTR node of address a, naming targets (sorted, without
// duplicates). rank orders it against another service's PTR of a.
func (r *Resolver) ptr(a netip.Addr, rank string, targets ...string) namedNode {
	name := dnswire.ReverseName(a)
	slices.Sort(targets)
	targets = slices.Compact(targets)
	r.b.Begin(name)
	for _, t := range targets {
		r.b.NameRecord(name, dnswire.TypePTR, t)
	}
	return namedNode{name: name, node: &node{sets: []rrset{{dnswire.TypePTR, r.b.Finish()}}}, rank: rank + targets[0]}
}

func (r *Resolver) externalName(base string, s *fsm.Service) []namedNode {
	n := &node{}
	target, ok := dnswire.ParseName(s.ExternalName)
	if ok && target != "\x00" {
		r.b.Begin(base)
		r.b.NameRecord(base, dnswire.TypeCNAME, target)
		n.cname = r.b.Finish()
		n.cnameInZone = r.classify([]byte(target)) == zoneCluster
	} else {
		r.log.Warn("external name is not a valid dns name; service has no records",
			"namespace", s.Namespace, "service", s.Name, "externalName", s.ExternalName)
	}
	return []namedNode{{name: base, node: n}}
}

func (r *Resolver) clusterIP(base string, s *fsm.Service) []namedNode {
	addrs := usable(nil, s.ClusterIPs)
	out := []namedNode{{name: base, node: &node{sets: r.addrSets(base, addrs)}}}
	out = r.ports(out, base, s, func(p fsm.Port) []srvTarget {
		return []srvTarget{{port: p.Port, name: base, addrs: addrs}}
	})
	for _, a := range addrs {
		out = append(out, r.ptr(a, "0", base)) // before endpoints' PTRs
	}
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
		name, ok := dnswire.Name(base, "_"+p.Name, "_"+proto)
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
			n = &node{sets: []rrset{{dnswire.TypeSRV, r.srvSet(name, ts)}}}
		}
		out = append(out, namedNode{name: name, node: n})
		if parent := name[2+len(p.Name):]; !slices.ContainsFunc(out, func(n namedNode) bool { return n.name == parent }) {
			out = append(out, namedNode{name: parent, node: ent})
		}
	}
	return out
}

// srvSet builds an SRV RRset with the targets' addresses as additional
// records. The weights are equal, so clients spread evenly; they add up to
// about 100.
func (r *Resolver) srvSet(owner string, ts []srvTarget) *dnswire.Section {
	b := &r.b
	b.Begin(owner)
	weight := uint16(max(1, 100/len(ts)))
	for _, t := range ts {
		b.SRV(owner, 0, weight, t.port, t.name)
	}
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if seen[t.name] {
			continue
		}
		seen[t.name] = true
		for _, a := range t.addrs {
			b.Addr(true, t.name, a)
		}
	}
	return b.FinishRotating()
}

// addrSets returns the A and the AAAA RRset of owner, leaving out an empty one.
func (r *Resolver) addrSets(owner string, addrs []netip.Addr) []rrset {
	var sets []rrset
	for _, typ := range [2]uint16{dnswire.TypeA, dnswire.TypeAAAA} {
		r.b.Begin(owner)
		found := false
		for _, a := range addrs {
			if a.Is4() == (typ == dnswire.TypeA) {
				r.b.Addr(false, owner, a)
				found = true
			}
		}
		if found {
			sets = append(sets, rrset{typ, r.b.FinishRotating()})
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
// its endpointLabel when it has none), SRV records per named port pointing
// at those endpoint names, and a PTR record per published address naming
// its endpoints. Without published addresses the service has no names at
// all (spec 1.1.0 section 2.4.1: NXDOMAIN), so none below it either
// (RFC 8020).
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
	// ptrTargets maps the published addresses to their endpoints' names,
	// for PTR records (spec 1.1.0 section 2.4.3, whose hostname is the
	// system-assigned one of section 2.1 for an endpoint without one).
	ptrTargets := map[netip.Addr][]string{}
	var ptrOrder []netip.Addr
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
				if host, ok = dnswire.Name(base, ep.Hostname); !ok {
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
					if name, ok = dnswire.Name(base, endpointLabel(a)); !ok {
						continue // base is too long for one more label
					}
				}
				if _, ok := ptrTargets[a]; !ok {
					ptrOrder = append(ptrOrder, a)
				}
				ptrTargets[a] = append(ptrTargets[a], name)
				add(i, name, a)
			}
		}
	}

	if len(all) == 0 {
		return nil
	}
	out := []namedNode{{name: base, node: &node{sets: r.addrSets(base, all)}}}
	for _, name := range order {
		out = append(out, namedNode{name: name, node: &node{sets: r.addrSets(name, addrsOf[name])}})
	}
	for _, a := range ptrOrder {
		out = append(out, r.ptr(a, "1", ptrTargets[a]...))
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
