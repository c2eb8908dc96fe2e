package fsm

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
// their names (see validate).
func (r *Records) View(index uint64) *View {
	c := newChange(emptyView())
	for _, cmd := range r.commands() {
		c.apply(&cmd)
	}
	if r.Config != nil {
		c.next.config = r.Config
	}
	c.next.index = index
	return c.done()
}

// commands returns the commands that build r from nothing.
func (r *Records) commands() []Command {
	cmds := make([]Command, 0, len(r.Services)+len(r.Slices)+len(r.Namespaces)+len(r.Pods)+1)
	for _, s := range r.Services {
		cmds = append(cmds, UpsertService(s))
	}
	for _, e := range r.Slices {
		cmds = append(cmds, UpsertSlice(e))
	}
	for _, ns := range r.Namespaces {
		cmds = append(cmds, UpsertNamespace(ns))
	}
	for _, p := range r.Pods {
		cmds = append(cmds, UpsertPod(p))
	}
	if r.Tracked != (Tracked{}) {
		cmds = append(cmds, SetTracked(r.Tracked))
	}
	return cmds
}

// validate checks every record as an upsert command would be checked, and
// the configuration as set-config and reject-config would be.
func (r *Records) validate() error {
	cmds := r.commands()
	if r.Config != nil {
		if r.Config.Config != nil {
			cmds = append(cmds, SetConfig(r.Config.Config))
		}
		if r.Config.Rejected != nil {
			cmds = append(cmds, RejectConfig(*r.Config.Rejected))
		}
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
