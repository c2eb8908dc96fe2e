package fsm

import (
	"iter"
	"maps"
	"slices"
	"strings"
)

// View is one immutable state of the record set, as of a Raft log index.
// Nothing reachable from a View is ever modified: readers may keep and share
// it, and may compare pointers between Views to see what changed.
type View struct {
	index    uint64
	services map[ServiceKey]*Service
	slices   map[SliceKey]*EndpointSlice
	// bySvc groups the slices by the service they belong to, sorted by name.
	bySvc map[ServiceKey][]*EndpointSlice
}

// emptyView is the state before the first entry.
func emptyView() *View {
	return &View{
		services: map[ServiceKey]*Service{},
		slices:   map[SliceKey]*EndpointSlice{},
		bySvc:    map[ServiceKey][]*EndpointSlice{},
	}
}

// Index is the Raft log index of the last entry this View includes.
func (v *View) Index() uint64 { return v.index }

// Service returns a service, or nil.
func (v *View) Service(k ServiceKey) *Service { return v.services[k] }

// Services yields every service in no particular order.
func (v *View) Services() iter.Seq[*Service] { return maps.Values(v.services) }

// Slice returns an endpoint slice, or nil.
func (v *View) Slice(k SliceKey) *EndpointSlice { return v.slices[k] }

// Slices yields every endpoint slice in no particular order.
func (v *View) Slices() iter.Seq[*EndpointSlice] { return maps.Values(v.slices) }

// SlicesOf returns the endpoint slices of a service, sorted by slice name. The
// service itself need not exist. The caller must not modify the result.
func (v *View) SlicesOf(k ServiceKey) []*EndpointSlice { return v.bySvc[k] }

// Counts returns how many services and endpoint slices the View holds.
func (v *View) Counts() (services, endpointSlices int) { return len(v.services), len(v.slices) }

// SameRecords reports whether v and o hold the same services and endpoint
// slices, whatever their indexes.
func (v *View) SameRecords(o *View) bool {
	if len(v.services) != len(o.services) || len(v.slices) != len(o.slices) {
		return false
	}
	for k, s := range v.services {
		if other := o.services[k]; other == nil || !s.Equal(other) {
			return false
		}
	}
	for k, e := range v.slices {
		if other := o.slices[k]; other == nil || !e.Equal(other) {
			return false
		}
	}
	return true
}

// change is a View being built from another by a batch of commands. The maps
// are copied once, on the first write, so a batch costs one copy.
type change struct {
	next        *View
	copied      bool
	touchedSvc  map[ServiceKey]bool
	touchedSlic map[SliceKey]bool
}

func newChange(from *View) *change {
	n := *from
	return &change{next: &n, touchedSvc: map[ServiceKey]bool{}, touchedSlic: map[SliceKey]bool{}}
}

func (c *change) ensureCopied() {
	if c.copied {
		return
	}
	c.next.services = maps.Clone(c.next.services)
	c.next.slices = maps.Clone(c.next.slices)
	c.next.bySvc = maps.Clone(c.next.bySvc)
	c.copied = true
}

// apply applies one validated command.
func (c *change) apply(cmd *Command) {
	c.ensureCopied()
	v := c.next
	switch cmd.Op {
	case OpUpsertService:
		v.services[cmd.Service.Key()] = cmd.Service
		c.touchedSvc[cmd.Service.Key()] = true
	case OpDeleteService:
		k := ServiceKey{cmd.Namespace, cmd.Name}
		delete(v.services, k)
		c.touchedSvc[k] = true
	case OpUpsertSlice:
		k := cmd.Slice.Key()
		if old := v.slices[k]; old != nil {
			v.removeFromService(old)
		}
		v.slices[k] = cmd.Slice
		v.addToService(cmd.Slice)
		c.touchedSlic[k] = true
	case OpDeleteSlice:
		k := SliceKey{cmd.Namespace, cmd.Name}
		if old := v.slices[k]; old != nil {
			v.removeFromService(old)
			delete(v.slices, k)
		}
		c.touchedSlic[k] = true
	}
}

func (v *View) removeFromService(e *EndpointSlice) {
	sk := e.ServiceKey()
	rest := slices.DeleteFunc(slices.Clone(v.bySvc[sk]), func(x *EndpointSlice) bool { return x == e })
	if len(rest) == 0 {
		delete(v.bySvc, sk)
		return
	}
	v.bySvc[sk] = rest
}

func (v *View) addToService(e *EndpointSlice) {
	sk := e.ServiceKey()
	list := append(slices.Clone(v.bySvc[sk]), e)
	slices.SortFunc(list, func(a, b *EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	v.bySvc[sk] = list
}
