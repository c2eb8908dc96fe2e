package fsm

import (
	"cmp"
	"iter"
	"slices"
	"strings"
	"sync"
)

// Records is a whole record set, as a snapshot holds it.
type Records struct {
	Services   []*Service
	Slices     []*EndpointSlice
	Namespaces []string
	Pods       []*Pod
	Tracked    Tracked
	// Config is the configuration part, with the indexes it was
	// committed at; nil for none.
	Config *ConfigState
}

// View builds a View of r as of index, for snapshots, tests and tools that
// need a state without a store or a log. r must be valid: records with
// their names (see validate). A record whose key comes again is replaced,
// as a later upsert replaces it.
func (r *Records) View(index uint64) *View {
	c := newChange(emptyView())
	// The services and slices, most of a restart's records, go straight
	// into their maps (the services on another core), and each service's
	// slices are sorted once: the View is the one their upserts, applied
	// in turn, give. Each service's group of slices goes in in key order,
	// which fills the tree's nodes (a store and a snapshot hold the records
	// in that order already).
	var services sync.WaitGroup
	services.Go(func() {
		for _, s := range r.Services {
			c.services.Set(s)
		}
	})
	for _, e := range r.Slices {
		c.slices.Set(e)
	}
	// The slices sorted by service, then name, are each service's group
	// in turn (the tree yields them by namespace and name, which is close
	// to that order where slices are named after their service, as
	// Kubernetes names them: pdqsort finds the runs). The groups share one
	// array, which a restart at 100k allocates once instead of a map and
	// 100k lists.
	sliceTree := c.slices.Freeze()
	bySvc := slices.AppendSeq(make([]*EndpointSlice, 0, sliceTree.Len()), sliceTree.All())
	slices.SortFunc(bySvc, func(a, b *EndpointSlice) int {
		return cmp.Or(compareKeys(a.ServiceKey(), b.ServiceKey()), strings.Compare(a.Name, b.Name))
	})
	for len(bySvc) > 0 {
		n := 1
		for n < len(bySvc) && bySvc[n].ServiceKey() == bySvc[0].ServiceKey() {
			n++
		}
		c.bySvc.Set(bySvc[:n:n])
		bySvc = bySvc[n:]
	}
	services.Wait()
	rest := Records{Namespaces: r.Namespaces, Pods: r.Pods, Tracked: r.Tracked}
	for cmd := range rest.commands() {
		c.apply(&cmd)
	}
	if r.Config != nil {
		c.next.config = r.Config
	}
	c.next.index = index
	return c.done()
}

// compact compacts every record of r (see Service.compact).
func (r *Records) compact() {
	for _, s := range r.Services {
		s.compact()
	}
	for _, e := range r.Slices {
		e.compact()
	}
	for _, p := range r.Pods {
		p.compact()
	}
}

// commands yields the commands that build r from nothing.
func (r *Records) commands() iter.Seq[Command] {
	return func(yield func(Command) bool) {
		for _, s := range r.Services {
			if !yield(UpsertService(s)) {
				return
			}
		}
		for _, e := range r.Slices {
			if !yield(UpsertSlice(e)) {
				return
			}
		}
		for _, ns := range r.Namespaces {
			if !yield(UpsertNamespace(ns)) {
				return
			}
		}
		for _, p := range r.Pods {
			if !yield(UpsertPod(p)) {
				return
			}
		}
		if r.Tracked != (Tracked{}) {
			yield(SetTracked(r.Tracked))
		}
	}
}

// validate checks every record as an upsert command would be checked, and
// the configuration as set-config and reject-config would be.
func (r *Records) validate() error {
	for cmd := range r.commands() {
		if err := cmd.validateFields(); err != nil {
			return err
		}
	}
	if r.Config == nil {
		return nil
	}
	var cmds []Command
	if r.Config.Config != nil {
		cmds = append(cmds, SetConfig(r.Config.Config))
	}
	if r.Config.Rejected != nil {
		cmds = append(cmds, RejectConfig(*r.Config.Rejected))
	}
	for _, cmd := range cmds {
		if err := cmd.validateFields(); err != nil {
			return err
		}
	}
	return nil
}

// NewView builds a View of services and endpoint slices alone (see
// Records.View).
func NewView(index uint64, services []*Service, slices []*EndpointSlice) *View {
	return (&Records{Services: services, Slices: slices}).View(index)
}

// Apply returns the View that applying cmds to v gives at index, as a
// store applying them in one batch would publish it, sharing what they do
// not change with v: for tests and tools that derive Views without a store
// or a log. The commands must be valid (see validate).
func (v *View) Apply(index uint64, cmds ...Command) *View {
	c := newChange(v)
	for i := range cmds {
		c.apply(&cmds[i])
	}
	c.next.index = index
	return c.done()
}
