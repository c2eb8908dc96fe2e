package resolver

import (
	"iter"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/cowmap"
)

// index is the DNS form of one View. It is never modified once published.
//
// Its maps are persistent (cowmap): the index of the next View is built
// from this one by replacing the records of the services that changed
// between the two Views (fsm.View.ChangedServices), sharing everything
// else, so a change costs what it changes, not what the index holds. Only
// a change of what every service's records depend on (TTL, pod mode) builds
// every service again; what the result is never depends on the road taken
// (see claims).
//
// The index keeps no list of a service's names: view holds the service and
// slices they were built from, and the build that replaces a service builds
// its old names again from those to take them back, which costs one
// service where keeping them would cost every one.
type index struct {
	view *fsm.View
	soa  dnswire.SOA
	// nodes is what the index serves, by lower-case wire name. Who claims
	// a name is in shared, else in the node served (node.owner, soleEnt),
	// else no service does and the node is base's.
	nodes cowmap.Map[string, *node]
	// shared holds the claims of every name that more than one service
	// claims (an empty non-terminal counts once per service).
	shared cowmap.Map[string, *sharedName]
	// base is the index's names that are not a service's: the apex, its
	// NS and version names, and the custom records with the empty
	// non-terminals above them, at names no service claims.
	base map[string]*node
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
	// those not served because a Service's records, or the index's own
	// names, hold their name.
	custom   *custom
	shadowed int
}

// lookup returns the node of the lower-cased wire name key, or nil.
func (ix *index) lookup(key []byte) *node {
	n, _ := cowmap.GetBytes(ix.nodes, key)
	return n
}

// node is one owner name: a list of its RRsets, one per node, at most one
// per type, in the order ANY picks from; most names have one, so a node
// is one small allocation. A CNAME comes first, and answers every type
// (ExternalName services). A node without a set (one no Builder finished,
// whose type is 0) is an empty non-terminal: the name exists, but has no
// records.
type node struct {
	rrset dnswire.Section
	next  *node // the name's next RRset
	// owner is the service whose records these are (on a name's first
	// node); nil for the index's own names and custom records.
	owner *fsm.Service
}

// ent is the node of the empty non-terminals that are not soleEnt.
var ent = &node{}

// soleEnt is the node of an empty non-terminal that one service claims,
// and no other: it answers as ent does, and tells the index that a service
// claims the name (see index.nodes).
var soleEnt = &node{}

// sole reports whether n, served at a name that shared does not hold, is
// one service's claim.
func sole(n *node) bool { return n == soleEnt || n.owner != nil }

// add returns a set for a dnswire.Builder to finish, after n's sets.
func (n *node) add() *dnswire.Section {
	if n.rrset.Type() == 0 {
		return &n.rrset
	}
	for n.next != nil {
		n = n.next
	}
	n.next = &node{}
	return &n.next.rrset
}

// first returns n's first set, or nil.
func (n *node) first() *dnswire.Section {
	if n.rrset.Type() == 0 {
		return nil
	}
	return &n.rrset
}

// set returns n's set of type typ, or nil.
func (n *node) set(typ uint16) *dnswire.Section {
	for ; n != nil; n = n.next {
		if t := n.rrset.Type(); t == typ && t != 0 {
			return &n.rrset
		}
	}
	return nil
}

// cname returns n's CNAME, or nil.
func (n *node) cname() *dnswire.Section {
	if n.rrset.Type() == dnswire.TypeCNAME {
		return &n.rrset
	}
	return nil
}

type namedNode struct {
	name string
	node *node
}

// sharedName is the claims of services on one name, where several may
// claim it: PTR names of addresses that several services have, pod names,
// namespaces' empty non-terminals, and the rare clash of two services'
// names (which the log reports). The served node is that of the best claim
// (better): the index is then one function of the View, whatever order
// services came and went in.
type sharedName struct {
	ents   int // claims by empty non-terminals
	claims []svcClaim
}

// svcClaim is one service's claim. A service's claims are told apart from
// another's by its *fsm.Service, which a new index's claims may share with
// the previous one's: those go before these come (update.replace).
type svcClaim struct {
	svc *fsm.Service
	nn  namedNode
}

// rank orders the claims of a PTR name, which several services may
// legitimately share: a cluster IP's before an endpoint's, then by the
// smallest target. Pod names, which several services may share too, are
// equal, as are the names of two services, which the log reports. rank is
// only asked where several services claim a name, so it is derived from
// the claim rather than held by every one.
func (c svcClaim) rank() string {
	ptr := c.nn.node.set(dnswire.TypePTR)
	if ptr == nil {
		return ""
	}
	target, _ := ptr.Target(c.nn.name)
	if c.svc.Headless {
		return "1" + target // headless's PTRs name endpoints
	}
	return "0" + target
}

// better reports whether a beats b for a name: records beat an empty
// non-terminal, then the smaller rank, then the service with the smaller
// key.
func better(a, b svcClaim) bool {
	if (a.nn.node == ent) != (b.nn.node == ent) {
		return b.nn.node == ent
	}
	if ra, rb := a.rank(), b.rank(); ra != rb {
		return ra < rb
	}
	ak, bk := a.svc.Key(), b.svc.Key()
	if ak.Namespace != bk.Namespace {
		return ak.Namespace < bk.Namespace
	}
	return ak.Name < bk.Name
}

// build returns the index of v, made from prev's by rebuilding the records
// of the services that differ, and how many services it rebuilt. With no
// prev, or one whose TTL or pod mode differ, every service is rebuilt.
func (r *Resolver) build(prev *index, v *fsm.View) (*index, int) {
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
		namespacesFromView: tracked.Namespaces,
		podsFromView:       tracked.Pods && podMode == PodVerified,
		endpointPods:       !tracked.Pods && podMode == PodVerified,
		ttl:                ttl,
		podMode:            podMode,
	}
	c := (*custom)(nil)
	if prev != nil && prev.custom != nil && prev.custom.cfg == cfg && prev.custom.ttl == ttl {
		c = prev.custom
	} else {
		c = r.buildCustom(cfg, ttl)
	}
	ix.custom = c
	u := &update{ix: ix, log: r.log, podZone: r.podZone}
	// The keys of the services to rebuild: those that differ from prev's
	// View (from), or all.
	var changed iter.Seq[fsm.ServiceKey]
	var from *fsm.View
	var jobs []rebuild
	if prev != nil && prev.endpointPods == ix.endpointPods && prev.ttl == ix.ttl {
		u.nodes, u.shared = prev.nodes.Builder(), prev.shared.Builder()
		u.oldBase = prev.base
		from = prev.view
		changed = v.ChangedServices(from)
	} else {
		u.nodes, u.shared = ix.nodes.Builder(), ix.shared.Builder()
		nsvc, _ := v.Counts()
		jobs = make([]rebuild, 0, nsvc)
		changed = func(yield func(fsm.ServiceKey) bool) {
			for s := range v.Services() {
				if !yield(s.Key()) {
					return
				}
			}
		}
	}
	done := map[fsm.ServiceKey]bool{} // ChangedServices may name a key twice
	for k := range changed {
		var j rebuild
		if from != nil {
			if done[k] {
				continue
			}
			done[k] = true
			j.old, j.oldSl = from.Service(k), from.SlicesOf(k)
		}
		j.svc, j.sl = v.Service(k), v.SlicesOf(k)
		if j.old == j.svc && slices.Equal(j.oldSl, j.sl) {
			continue // came back
		}
		jobs = append(jobs, j)
	}
	rebuilt, claimed := 0, 0
	for batch := range r.named(jobs, ix.endpointPods, ttl) {
		for i := range batch {
			j := &batch[i]
			if j.svc != nil {
				rebuilt++
			}
			u.replace(j.old, j.oldNames, j.svc, j.names)
			*j = rebuild{} // its names are the index's now, or garbage
		}
		claimed += len(batch)
		if from == nil && claimed == len(batch) && claimed < len(jobs) {
			// A full build sizes the name map once, for as many names a
			// service as the first batch made: grown step by step, a
			// build at 100k took a third to a half longer. A fixed guess
			// (six a service) doubled the map where services have four
			// (one port, a cluster IP: 64.0 MB of index at 100k against
			// 52.3).
			u.nodes.Grow(u.nodes.Len() * (len(jobs) - claimed) / claimed)
		}
	}
	r.setBase(u, v, c)
	ix.nodes, ix.shared = u.nodes.Freeze(), u.shared.Freeze()
	return ix, rebuilt
}

// rebuild is one service whose names change: old, with its slices, as
// the previous index built it, and svc, the same service in the new View;
// either may be nil.
type rebuild struct {
	old, svc        *fsm.Service
	oldSl, sl       []*fsm.EndpointSlice
	oldNames, names []namedNode
}

// rebuildBatch is how many services' names a build holds at once: a full
// build makes them on every core, a batch at a time, and then claims them
// in turn.
const rebuildBatch = 8192

// named yields the rebuilds in batches, with their names: while the caller
// claims one batch's, the next batch's are made.
func (r *Resolver) named(jobs []rebuild, endpointPods bool, ttl uint32) iter.Seq[[]rebuild] {
	return func(yield func([]rebuild) bool) {
		if len(jobs) <= rebuildBatch {
			r.names(jobs, endpointPods, ttl)
			yield(jobs)
			return
		}
		ready, stop := make(chan []rebuild, 1), make(chan struct{})
		defer close(stop)
		go func() {
			defer close(ready)
			for batch := range slices.Chunk(jobs, rebuildBatch) {
				r.names(batch, endpointPods, ttl)
				select {
				case ready <- batch:
				case <-stop:
					return
				}
			}
		}()
		for batch := range ready {
			if !yield(batch) {
				return
			}
		}
	}
}

// names fills in the names of the rebuilds: on every core when there are
// many (a restart, a snapshot restored, a new TTL), each with a Builder of
// its own. What a name holds does not depend on which core built it.
func (r *Resolver) names(jobs []rebuild, endpointPods bool, ttl uint32) {
	build := func(nm *namer, jobs []rebuild) {
		for i := range jobs {
			j := &jobs[i]
			if j.old != nil {
				// As prev built them: its pod mode is this one's. The
				// log had its say then.
				j.oldNames = nm.service(quiet, j.old, j.oldSl, endpointPods)
			}
			if j.svc != nil {
				j.names = nm.service(r.log, j.svc, j.sl, endpointPods)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs)/minParallelNames)
	if workers < 2 {
		build(&namer{r, &r.b}, jobs)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			build(&namer{r, &dnswire.Builder{TTL: ttl}}, jobs[w*len(jobs)/workers:(w+1)*len(jobs)/workers])
		})
	}
	wg.Wait()
}

// minParallelNames is how many services a core builds the names of at
// least: fewer cost more to hand over than to build.
const minParallelNames = 256

// namer builds services' names and records with a wire Builder of its own,
// so that several build at once.
type namer struct {
	*Resolver
	b *dnswire.Builder
}

// update is an index being built from the previous one.
type update struct {
	ix      *index
	log     *slog.Logger
	nodes   *cowmap.Builder[string, *node]
	shared  *cowmap.Builder[string, *sharedName]
	oldBase map[string]*node
	podZone string // pod.<zone>
}

// replace replaces the claims oldNames of old with the claims names of
// svc, the same service in the new View; either may be nil, or both the
// same *fsm.Service (when only its slices changed).
func (u *update) replace(old *fsm.Service, oldNames []namedNode, svc *fsm.Service, names []namedNode) {
	var unsettled []string
	for _, nn := range oldNames {
		u.unclaim(old, nn)
		unsettled = append(unsettled, nn.name)
	}
	for _, nn := range names {
		if !u.claim(svc, nn) {
			unsettled = append(unsettled, nn.name)
		}
	}
	for _, name := range unsettled {
		u.settle(name)
	}
}

// claim adds svc's claim nn, and reports whether the name is settled: no
// other service claims it, so svc's node is served. If not, settle decides.
func (u *update) claim(svc *fsm.Service, nn namedNode) bool {
	mine := nn.node
	if mine == ent {
		mine = soleEnt
	}
	cur, ok := u.nodes.Get(nn.name)
	if !ok {
		// Not served, so no service claims it (a claimed name always is).
		u.nodes.Set(nn.name, mine)
		return true
	}
	sh, ok := u.shared.Get(nn.name)
	if !ok {
		if !sole(cur) { // base's
			u.nodes.Set(nn.name, mine)
			return true
		}
		first := svcClaim{nil, namedNode{nn.name, ent}}
		if cur != soleEnt {
			first = svcClaim{cur.owner, namedNode{nn.name, cur}}
		}
		sh = (&sharedName{}).with(first)
	}
	if u.clash(nn) && slices.ContainsFunc(sh.claims, func(c svcClaim) bool { return u.clash(c.nn) }) {
		u.log.Warn("dns name of two services; keeping one", "name", dnswire.Presentation(nn.name),
			"namespace", svc.Namespace, "service", svc.Name)
	}
	u.shared.Set(nn.name, sh.with(svcClaim{svc, nn}))
	return false
}

// clash reports whether two services' claims of nn's name are a clash the
// log reports: those with records, but for PTR and pod names, which several
// services may legitimately share.
func (u *update) clash(nn namedNode) bool {
	return nn.node != ent && nn.node.set(dnswire.TypePTR) == nil && !strings.HasSuffix(nn.name, u.podZone)
}

// unclaim removes svc's claim nn; settle then decides what is served.
func (u *update) unclaim(svc *fsm.Service, nn namedNode) {
	sh, ok := u.shared.Get(nn.name)
	if !ok {
		u.nodes.Delete(nn.name) // svc was its one claimant
		return
	}
	// One claim left is held as claim holds it, so that the index is the
	// same whichever road it took.
	sh = sh.without(svcClaim{svc, nn})
	switch {
	case sh.ents == 0 && len(sh.claims) == 0:
		u.shared.Delete(nn.name)
	case sh.ents == 0 && len(sh.claims) == 1:
		u.shared.Delete(nn.name)
		u.nodes.Set(nn.name, sh.claims[0].nn.node)
	case sh.ents == 1 && len(sh.claims) == 0:
		u.shared.Delete(nn.name)
		u.nodes.Set(nn.name, soleEnt)
	default:
		u.shared.Set(nn.name, sh)
	}
}

// with returns sh with c added.
func (sh *sharedName) with(c svcClaim) *sharedName {
	out := &sharedName{ents: sh.ents, claims: sh.claims}
	if c.nn.node == ent {
		out.ents++
	} else {
		out.claims = append(slices.Clip(sh.claims), c)
	}
	return out
}

// without returns sh with c removed.
func (sh *sharedName) without(c svcClaim) *sharedName {
	out := &sharedName{ents: sh.ents, claims: sh.claims}
	if c.nn.node == ent {
		out.ents--
	} else {
		out.claims = slices.DeleteFunc(slices.Clone(sh.claims), func(x svcClaim) bool { return x.svc == c.svc })
	}
	return out
}

// settle makes the node served at name the one its claims give: the best
// service claim, else none (setBase then puts base's back). A name one
// service claims is settled: claim and unclaim give it its node.
func (u *update) settle(name string) {
	cur, _ := u.nodes.Get(name)
	sh, ok := u.shared.Get(name)
	if !ok {
		if cur != nil && !sole(cur) {
			u.nodes.Delete(name)
		}
		return
	}
	n := ent
	if len(sh.claims) > 0 {
		best := sh.claims[0]
		for _, c := range sh.claims[1:] {
			if better(c, best) {
				best = c
			}
		}
		n = best.nn.node
	}
	if n != cur {
		u.nodes.Set(name, n)
	}
}

// claimed reports whether a service claims name.
func (u *update) claimed(name string) bool {
	if _, ok := u.shared.Get(name); ok {
		return true
	}
	n, ok := u.nodes.Get(name)
	return ok && sole(n)
}

// setBase builds the index's own names and the custom records c, puts
// them where no service claims the name, and removes the previous ones
// that are gone.
func (r *Resolver) setBase(u *update, v *fsm.View, c *custom) {
	ix := u.ix
	b := &r.b
	nsAddrs := r.nsAddrs
	if len(nsAddrs) == 0 {
		if s := v.Service(fsm.ServiceKey{Namespace: "kube-system", Name: "kube-dns"}); s != nil && !s.Headless && s.Type != fsm.TypeExternalName {
			nsAddrs = usable(nil, s.ClusterIPs)
		}
	}
	base := make(map[string]*node, 8+len(c.names))
	apex := &node{}
	b.Begin(r.zone)
	b.SOA(r.zone, &ix.soa)
	b.Finish(apex.add(), dnswire.TypeSOA)
	b.Begin(r.zone)
	b.NameRecord(r.zone, dnswire.TypeNS, r.mname)
	for _, a := range nsAddrs {
		b.Addr(true, r.mname, a) // glue
	}
	b.Finish(apex.add(), dnswire.TypeNS)
	base[r.zone] = apex
	base[r.svcZone] = ent
	base[r.nsZone] = ent
	base[r.mname] = (&namer{r, b}).addrNode(r.mname, nsAddrs)
	if ix.podMode == PodInsecure || ix.podsFromView && v.HasPods() {
		base[r.podZone] = ent
	}
	b.Begin(r.version)
	b.TXT(r.version, schemaVersion)
	txt := &node{}
	b.Finish(txt.add(), dnswire.TypeTXT)
	base[r.version] = txt
	r.addCustom(u, base, c)
	ix.base = base
	for name, n := range base {
		if cur, _ := u.nodes.Get(name); cur != n && !u.claimed(name) {
			u.nodes.Set(name, n)
		}
	}
	for name := range u.oldBase {
		if _, ok := base[name]; !ok && !u.claimed(name) {
			u.nodes.Delete(name)
		}
	}
}

// schemaVersion is the version of the Kubernetes DNS specification served,
// published as TXT at dns-version.<zone> as the specification asks.
const schemaVersion = "1.1.0"

// serial derives the SOA serial from a Raft index. Truncation is fine: serial
// arithmetic (RFC 1982) wraps, and no two Views 2^31 entries apart are ever
// compared by a client.
func serial(index uint64) uint32 { return uint32(index) }

// quiet is the log of a service built again (see index).
var quiet = slog.New(slog.DiscardHandler)

// service returns the names and records of one service, with the pod names
// of its endpoint addresses if endpointPods, sorted, each name once:
// <ns>.svc.<zone>, an empty non-terminal that exists while any service of
// the namespace does, and, if the service has records,
// <svc>.<ns>.svc.<zone> and the names below it, its PTR names and, with
// endpointPods, its pod names. None if the service's name is invalid. What
// cannot be served goes to log.
func (r *namer) service(log *slog.Logger, s *fsm.Service, sl []*fsm.EndpointSlice, endpointPods bool) []namedNode {
	base, ok := dnswire.Name(r.svcZone, s.Name, s.Namespace)
	if !ok {
		log.Warn("service has no valid dns name; skipped", "namespace", s.Namespace, "service", s.Name)
		return nil
	}
	var out []namedNode
	switch {
	case s.Type == fsm.TypeExternalName:
		out = r.externalName(log, base, s)
	case s.Headless:
		out = r.headless(log, base, s, sl)
	default:
		out = r.clusterIP(log, base, s)
	}
	if endpointPods {
		out = r.verifiedPods(out, s, sl)
	}
	// A name below base ends with its octets: base's key, and the
	// namespace's, can point into that name's instead of holding their own.
	if i := slices.IndexFunc(out, func(nn namedNode) bool { return len(nn.name) > len(base) && strings.HasSuffix(nn.name, base) }); i >= 0 {
		suffix := out[i].name[len(out[i].name)-len(base):]
		for i := range out {
			if out[i].name == base {
				out[i].name = suffix
			}
		}
		base = suffix
	}
	// The namespace exists whatever the service's records.
	out = append(out, namedNode{name: base[1+len(s.Name):], node: ent})
	for _, nn := range out {
		if nn.node != ent {
			nn.node.owner = s
		}
	}
	// Each name once (sorted to find them): its first node with records,
	// else an empty non-terminal.
	slices.SortStableFunc(out, func(a, b namedNode) int { return strings.Compare(a.name, b.name) })
	names := out[:0] // compacted in place
	for _, nn := range out {
		switch last := len(names) - 1; {
		case last < 0 || names[last].name != nn.name:
			names = append(names, nn)
		case names[last].node == ent:
			names[last] = nn
		}
	}
	return names
}

// verifiedPods adds <a-b-c-d>.<ns>.pod.<zone> for every endpoint address,
// ready or not, of the service's slices, and the empty non-terminals above.
func (r *namer) verifiedPods(out []namedNode, s *fsm.Service, sl []*fsm.EndpointSlice) []namedNode {
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
				out = append(out, namedNode{name: name, node: r.addrNode(name, []netip.Addr{a})})
			}
		}
	}
	if len(seen) > 0 {
		out = append(out, namedNode{name: nsName, node: ent}, namedNode{name: r.podZone, node: ent})
	}
	return out
}

// ptr returns the PTR node of address a, naming targets (sorted, without
// duplicates: the first is svcClaim.rank's).
func (r *namer) ptr(a netip.Addr, targets ...string) namedNode {
	name := dnswire.ReverseName(a)
	slices.Sort(targets)
	targets = slices.Compact(targets)
	r.b.Begin(name)
	for _, t := range targets {
		r.b.NameRecord(name, dnswire.TypePTR, t)
	}
	n := &node{}
	r.b.Finish(n.add(), dnswire.TypePTR)
	return namedNode{name: name, node: n}
}

func (r *namer) externalName(log *slog.Logger, base string, s *fsm.Service) []namedNode {
	n := &node{}
	target, ok := dnswire.ParseName(s.ExternalName)
	if ok && target != "\x00" {
		r.b.Begin(base)
		r.b.NameRecord(base, dnswire.TypeCNAME, target)
		r.b.Finish(n.add(), dnswire.TypeCNAME)
	} else {
		log.Warn("external name is not a valid dns name; service has no records",
			"namespace", s.Namespace, "service", s.Name, "externalName", s.ExternalName)
	}
	return []namedNode{{name: base, node: n}}
}

func (r *namer) clusterIP(log *slog.Logger, base string, s *fsm.Service) []namedNode {
	addrs := usable(nil, s.ClusterIPs)
	out := []namedNode{{name: base, node: r.addrNode(base, addrs)}}
	out = r.ports(log, out, base, s, func(p fsm.Port) []srvTarget {
		return []srvTarget{{port: p.Port, name: base, addrs: addrs}}
	})
	for _, a := range addrs {
		out = append(out, r.ptr(a, base))
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
func (r *namer) ports(log *slog.Logger, out []namedNode, base string, s *fsm.Service, targets func(fsm.Port) []srvTarget) []namedNode {
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
			log.Warn("service port has no valid dns name; skipped", "namespace", s.Namespace,
				"service", s.Name, "port", p.Name, "protocol", p.Protocol)
			continue
		}
		if slices.ContainsFunc(out, func(n namedNode) bool { return n.name == name }) {
			continue // a duplicate port name
		}
		ts := targets(p)
		n := ent
		if len(ts) > 0 {
			n = &node{}
			r.srvSet(n.add(), name, ts)
		}
		out = append(out, namedNode{name: name, node: n})
		if parent := name[2+len(p.Name):]; !slices.ContainsFunc(out, func(n namedNode) bool { return n.name == parent }) {
			out = append(out, namedNode{name: parent, node: ent})
		}
	}
	return out
}

// srvSet builds into sec an SRV RRset with the targets' addresses as
// additional records. The weights are equal, so clients spread evenly;
// they add up to about 100.
func (r *namer) srvSet(sec *dnswire.Section, owner string, ts []srvTarget) {
	b := r.b
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
	b.FinishRotating(sec, dnswire.TypeSRV)
}

// addrNode returns the node of owner with the A and the AAAA RRset of
// addrs, leaving out an empty one.
func (r *namer) addrNode(owner string, addrs []netip.Addr) *node {
	n := &node{}
	for _, v4 := range [2]bool{true, false} {
		r.b.Begin(owner)
		found := false
		for _, a := range addrs {
			if a.Is4() == v4 {
				r.b.Addr(false, owner, a)
				found = true
			}
		}
		if found {
			typ := uint16(dnswire.TypeAAAA)
			if v4 {
				typ = dnswire.TypeA
			}
			r.b.FinishRotating(n.add(), typ)
		}
	}
	return n
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
func (r *namer) headless(log *slog.Logger, base string, s *fsm.Service, sl []*fsm.EndpointSlice) []namedNode {
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
					log.Warn("endpoint hostname is not a valid dns label; using its address",
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
	out := []namedNode{{name: base, node: r.addrNode(base, all)}}
	for _, name := range order {
		out = append(out, namedNode{name: name, node: r.addrNode(name, addrsOf[name])})
	}
	for _, a := range ptrOrder {
		out = append(out, r.ptr(a, ptrTargets[a]...))
	}
	return r.ports(log, out, base, s, func(p fsm.Port) []srvTarget {
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
