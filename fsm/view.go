package fsm

import (
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kdnsd/kdnsd/internal/cowtree"
)

// View is one immutable state of the record set, as of a Raft log index.
// Nothing reachable from a View is ever modified: readers may keep and share
// it, and may compare pointers between Views to see what changed.
//
// Services and slices are held in persistent ordered maps (cowtree), by
// namespace and name: a View made from another by a batch of commands
// shares every part the batch did not change, so making it costs what the
// batch changes, and ChangedServices finds what changed by walking only the
// parts not shared.
type View struct {
	index    uint64
	services cowtree.Tree[ServiceKey, *Service]
	slices   cowtree.Tree[SliceKey, *EndpointSlice]
	// bySvc groups the slices by the service they belong to, sorted by name;
	// it holds no empty group.
	bySvc cowtree.Tree[ServiceKey, []*EndpointSlice]

	namespaces map[string]struct{}
	// pods groups the pods by namespace, so that a change copies the pods
	// of one namespace, not of the cluster. It holds no empty group.
	pods     map[string]*podGroup
	podCount int
	tracked  Tracked
	config   *ConfigState // never nil

	// appendedAt is Entry.AppendedAt of the entry at index.
	appendedAt time.Time
}

// podGroup is the pods of one namespace.
type podGroup struct {
	byName map[string]*Pod
	// addrs counts the pods that have each address; it holds no zero.
	addrs map[netip.Addr]int
}

var (
	servicesSpec = &cowtree.Spec[ServiceKey, *Service]{Key: (*Service).Key, Compare: compareKeys[ServiceKey]}
	slicesSpec   = &cowtree.Spec[SliceKey, *EndpointSlice]{Key: (*EndpointSlice).Key, Compare: compareKeys[SliceKey]}
	bySvcSpec    = &cowtree.Spec[ServiceKey, []*EndpointSlice]{
		Key:     func(l []*EndpointSlice) ServiceKey { return l[0].ServiceKey() },
		Compare: compareKeys[ServiceKey],
	}
)

// compareKeys orders keys by namespace, then name: the order in which the
// API server lists objects, and a sync writes them.
func compareKeys[K ServiceKey | SliceKey](a, b K) int {
	x, y := struct{ Namespace, Name string }(a), struct{ Namespace, Name string }(b)
	if c := strings.Compare(x.Namespace, y.Namespace); c != 0 {
		return c
	}
	return strings.Compare(x.Name, y.Name)
}

// emptyView is the state before the first entry.
func emptyView() *View {
	return &View{
		services:   cowtree.New(servicesSpec),
		slices:     cowtree.New(slicesSpec),
		bySvc:      cowtree.New(bySvcSpec),
		namespaces: map[string]struct{}{},
		pods:       map[string]*podGroup{},
		config:     &ConfigState{},
	}
}

// Index is the Raft log index of the last entry this View includes.
func (v *View) Index() uint64 { return v.index }

// AppendedAt is when the leader appended the entry at Index to its log, by
// the leader's clock (see Entry.AppendedAt); zero when unknown: for a View
// loaded from the store's file or restored from a snapshot.
func (v *View) AppendedAt() time.Time { return v.appendedAt }

// Service returns a service, or nil.
func (v *View) Service(k ServiceKey) *Service {
	s, _ := v.services.Get(k)
	return s
}

// Services yields every service, by namespace and name.
func (v *View) Services() iter.Seq[*Service] { return v.services.All() }

// Slice returns an endpoint slice, or nil.
func (v *View) Slice(k SliceKey) *EndpointSlice {
	e, _ := v.slices.Get(k)
	return e
}

// Slices yields every endpoint slice, by namespace and name.
func (v *View) Slices() iter.Seq[*EndpointSlice] { return v.slices.All() }

// SlicesOf returns the endpoint slices of a service, sorted by slice name. The
// service itself need not exist. The caller must not modify the result.
func (v *View) SlicesOf(k ServiceKey) []*EndpointSlice {
	l, _ := v.bySvc.Get(k)
	return l
}

// Counts returns how many services and endpoint slices the View holds.
func (v *View) Counts() (services, endpointSlices int) { return v.services.Len(), v.slices.Len() }

// ChangedServices yields the key of every service that prev and v do not
// hold alike: added, removed or replaced, or whose endpoint slices differ
// (the service itself need not exist). A key may come twice. For a View
// made from prev by applying entries this costs what changed between them;
// for Views that share nothing (one restored from a snapshot) it compares
// every service.
func (v *View) ChangedServices(prev *View) iter.Seq[ServiceKey] {
	return func(yield func(ServiceKey) bool) {
		for k := range cowtree.Diff(prev.services, v.services, func(a, b *Service) bool { return a == b }) {
			if !yield(k) {
				return
			}
		}
		for k := range cowtree.Diff(prev.bySvc, v.bySvc, slices.Equal) {
			if !yield(k) {
				return
			}
		}
	}
}

// HasNamespace reports whether the View holds namespace name.
func (v *View) HasNamespace(name string) bool {
	_, ok := v.namespaces[name]
	return ok
}

// Namespaces yields every namespace in no particular order.
func (v *View) Namespaces() iter.Seq[string] { return maps.Keys(v.namespaces) }

// Pod returns a pod, or nil.
func (v *View) Pod(k PodKey) *Pod {
	if g := v.pods[k.Namespace]; g != nil {
		return g.byName[k.Name]
	}
	return nil
}

// Pods yields every pod in no particular order.
func (v *View) Pods() iter.Seq[*Pod] {
	return func(yield func(*Pod) bool) {
		for _, g := range v.pods {
			for _, p := range g.byName {
				if !yield(p) {
					return
				}
			}
		}
	}
}

// HasPodAddr reports whether a pod of namespace ns has address a. The
// namespace comes as bytes, as a DNS name's label does, which the lookup
// reads without copying (the resolver answers without allocating).
func (v *View) HasPodAddr(ns []byte, a netip.Addr) bool {
	g := v.pods[string(ns)]
	return g != nil && g.addrs[a] > 0
}

// HasPodsIn reports whether a pod of namespace ns has an address.
func (v *View) HasPodsIn(ns []byte) bool {
	g := v.pods[string(ns)]
	return g != nil && len(g.addrs) > 0
}

// HasPods reports whether any pod has an address.
func (v *View) HasPods() bool {
	for _, g := range v.pods {
		if len(g.addrs) > 0 {
			return true
		}
	}
	return false
}

// PodCounts returns how many namespaces and pods the View holds.
func (v *View) PodCounts() (namespaces, pods int) { return len(v.namespaces), v.podCount }

// Tracked returns which kinds the View holds in full.
func (v *View) Tracked() Tracked { return v.tracked }

// SameRecords reports whether v and o hold the same records and
// configuration, whatever their indexes.
func (v *View) SameRecords(o *View) bool {
	if v.services.Len() != o.services.Len() || v.slices.Len() != o.slices.Len() ||
		v.podCount != o.podCount || v.tracked != o.tracked || !maps.Equal(v.namespaces, o.namespaces) ||
		!v.config.Config.Equal(o.config.Config) {
		return false
	}
	for p := range v.Pods() {
		if other := o.Pod(p.Key()); other == nil || !p.Equal(other) {
			return false
		}
	}
	for s := range v.services.All() {
		if other := o.Service(s.Key()); other == nil || !s.Equal(other) {
			return false
		}
	}
	for e := range v.slices.All() {
		if other := o.Slice(e.Key()); other == nil || !e.Equal(other) {
			return false
		}
	}
	return true
}

// change is a View being built from another by a batch of commands. Each
// group of maps (namespaces; pods) is copied once, on its first write, and
// the services and slices are written through persistent-tree builders that
// copy only the nodes on the paths they write, so a batch costs what it changes: a
// batch of service changes does not copy a hundred thousand services, nor
// ten thousand pods. done returns the View.
type change struct {
	next          *View
	services      *cowtree.Builder[ServiceKey, *Service]
	slices        *cowtree.Builder[SliceKey, *EndpointSlice]
	bySvc         *cowtree.Builder[ServiceKey, []*EndpointSlice]
	copiedNS      bool
	copiedPods    bool
	copiedGroups  map[string]bool // pod groups already copied
	touchedSvc    map[ServiceKey]bool
	touchedSlic   map[SliceKey]bool
	touchedNS     map[string]bool
	touchedPods   map[PodKey]bool
	touchedTracks bool
	touchedConfig bool
}

func newChange(from *View) *change {
	n := *from
	return &change{next: &n, services: from.services.Builder(), slices: from.slices.Builder(), bySvc: from.bySvc.Builder(),
		touchedSvc: map[ServiceKey]bool{}, touchedSlic: map[SliceKey]bool{},
		touchedNS: map[string]bool{}, touchedPods: map[PodKey]bool{}, copiedGroups: map[string]bool{}}
}

// done returns the View built. The change must not be used after.
func (c *change) done() *View {
	c.next.services = c.services.Freeze()
	c.next.slices = c.slices.Freeze()
	c.next.bySvc = c.bySvc.Freeze()
	return c.next
}

// apply applies one validated command.
func (c *change) apply(cmd *Command) {
	v := c.next
	switch cmd.Op {
	case OpUpsertNamespace, OpDeleteNamespace:
		if !c.copiedNS {
			v.namespaces = maps.Clone(v.namespaces)
			c.copiedNS = true
		}
		if cmd.Op == OpUpsertNamespace {
			v.namespaces[cmd.Name] = struct{}{}
		} else {
			delete(v.namespaces, cmd.Name)
		}
		c.touchedNS[cmd.Name] = true
		return
	case OpUpsertPod, OpDeletePod:
		k := PodKey{cmd.Namespace, cmd.Name}
		if cmd.Op == OpUpsertPod {
			k = cmd.Pod.Key()
		}
		g := c.podGroup(k.Namespace)
		if old := g.byName[k.Name]; old != nil {
			countAddrs(g, old, -1)
			delete(g.byName, k.Name)
			v.podCount--
		}
		if cmd.Op == OpUpsertPod {
			g.byName[k.Name] = cmd.Pod
			countAddrs(g, cmd.Pod, 1)
			v.podCount++
		}
		if len(g.byName) == 0 {
			delete(v.pods, k.Namespace)
			delete(c.copiedGroups, k.Namespace) // a later pod there starts afresh
		}
		c.touchedPods[k] = true
		return
	case OpSetTracked:
		v.tracked = *cmd.Tracked
		c.touchedTracks = true
		return
	case OpSetConfig, OpRejectConfig:
		v.applyConfig(cmd, v.index)
		c.touchedConfig = true
		return
	}
	switch cmd.Op {
	case OpUpsertService:
		c.services.Set(cmd.Service)
		c.touchedSvc[cmd.Service.Key()] = true
	case OpDeleteService:
		k := ServiceKey{cmd.Namespace, cmd.Name}
		c.services.Delete(k)
		c.touchedSvc[k] = true
	case OpUpsertSlice:
		k := cmd.Slice.Key()
		if old, _ := c.slices.Get(k); old != nil {
			c.removeFromService(old)
		}
		c.slices.Set(cmd.Slice)
		c.addToService(cmd.Slice)
		c.touchedSlic[k] = true
	case OpDeleteSlice:
		k := SliceKey{cmd.Namespace, cmd.Name}
		if old, _ := c.slices.Get(k); old != nil {
			c.removeFromService(old)
			c.slices.Delete(k)
		}
		c.touchedSlic[k] = true
	}
}

// removeFromService and addToService keep bySvc's lists, which a published
// View may share, by replacing them.
func (c *change) removeFromService(e *EndpointSlice) {
	sk := e.ServiceKey()
	list, _ := c.bySvc.Get(sk)
	rest := slices.DeleteFunc(slices.Clone(list), func(x *EndpointSlice) bool { return x == e })
	if len(rest) == 0 {
		c.bySvc.Delete(sk)
		return
	}
	c.bySvc.Set(rest)
}

func (c *change) addToService(e *EndpointSlice) {
	sk := e.ServiceKey()
	list, _ := c.bySvc.Get(sk)
	list = append(slices.Clone(list), e)
	slices.SortFunc(list, func(a, b *EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	c.bySvc.Set(list)
}

// podGroup returns the pods of namespace ns in the View being built, copied
// on its first change in this batch.
func (c *change) podGroup(ns string) *podGroup {
	v := c.next
	if !c.copiedPods {
		v.pods = maps.Clone(v.pods)
		c.copiedPods = true
	}
	if c.copiedGroups[ns] {
		return v.pods[ns]
	}
	g := &podGroup{byName: map[string]*Pod{}, addrs: map[netip.Addr]int{}}
	if old := v.pods[ns]; old != nil {
		g = &podGroup{byName: maps.Clone(old.byName), addrs: maps.Clone(old.addrs)}
	}
	v.pods[ns] = g
	c.copiedGroups[ns] = true
	return g
}

// countAddrs adds delta to g's count of each distinct address of p.
func countAddrs(g *podGroup, p *Pod, delta int) {
	for i, a := range p.IPs {
		if slices.Contains(p.IPs[:i], a) {
			continue
		}
		if n := g.addrs[a] + delta; n > 0 {
			g.addrs[a] = n
		} else {
			delete(g.addrs, a)
		}
	}
}
