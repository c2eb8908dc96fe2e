package fsm

// NewView builds a View directly from records, for tests and tools that need
// a state without a store or a log.
func NewView(index uint64, services []*Service, slices []*EndpointSlice) *View {
	c := newChange(emptyView())
	for _, s := range services {
		c.apply(&Command{Op: OpUpsertService, Service: s})
	}
	for _, e := range slices {
		c.apply(&Command{Op: OpUpsertSlice, Slice: e})
	}
	c.next.index = index
	return c.next
}
