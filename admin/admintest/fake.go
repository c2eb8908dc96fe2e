package admintest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
)

// Cluster is a fake Raft group: one configuration, one leader and one
// record set shared by its members, changed at once by every call.
type Cluster struct {
	mu      sync.Mutex
	servers []raftnode.ServerInfo
	leader  string
	term    uint64
	view    *fsm.View
}

// NewCluster makes a fake group with the given configuration; the first
// server leads.
func NewCluster(servers ...raftnode.ServerInfo) *Cluster {
	c := &Cluster{servers: slices.Clone(servers), term: 1, view: fsm.NewView(0, nil, nil)}
	if len(servers) > 0 {
		c.leader = servers[0].ID
	}
	return c
}

// SetLeader makes id lead; "" leaves the group without a leader.
func (c *Cluster) SetLeader(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = id
	c.term++
}

// SetView replaces the record set every member holds.
func (c *Cluster) SetView(v *fsm.View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.view = v
}

// View returns the shared record set; a Cluster is an admin.Views.
func (c *Cluster) View() *fsm.View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.view
}

// Node returns the member id.
func (c *Cluster) Node(id string) *Node { return &Node{c: c, id: id} }

// Node is one member of a fake Cluster; it implements admin.Node. Its
// changes fail with raftnode.ErrNotLeader unless it leads.
type Node struct {
	c  *Cluster
	id string
}

func (n *Node) leaderLocked() error {
	if n.c.leader != n.id {
		return raftnode.ErrNotLeader
	}
	return nil
}

// Status reports the member as leader or follower; a follower heard from
// the leader 15ms ago.
func (n *Node) Status() raftnode.Status {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	st := raftnode.Status{
		ID: n.id, State: "Follower", Term: c.term, LeaderID: c.leader,
		CommitIndex: c.view.Index(), AppliedIndex: c.view.Index(), Servers: slices.Clone(c.servers),
		MaxCommandVersion: fsm.MaxCommandVersion,
	}
	// A voter has been admitted; a non-voter is staged, as a replica
	// waiting for promotion reports.
	st.Admission = raftnode.AdmissionStaged
	for _, s := range c.servers {
		if s.ID == c.leader {
			st.LeaderAddr = s.Address
		}
		if s.ID == n.id && s.Voter {
			st.Admission = raftnode.AdmissionAdmitted
		}
	}
	switch {
	case c.leader == n.id:
		st.State = "Leader"
	case c.leader == "":
		st.State = "Candidate"
	default:
		st.LastContact = time.Now().Add(-15 * time.Millisecond)
	}
	return st
}

// Servers returns the configuration.
func (n *Node) Servers() ([]raftnode.ServerInfo, error) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return slices.Clone(n.c.servers), nil
}

// Leader returns the leader's ID and address.
func (n *Node) Leader() (id, addr string) {
	st := n.Status()
	return st.LeaderID, st.LeaderAddr
}

// IsLeader reports whether this member leads.
func (n *Node) IsLeader() bool {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.c.leader == n.id
}

// AddServer adds or updates a server.
func (n *Node) AddServer(_ context.Context, id, addr string, voter bool) error {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := n.leaderLocked(); err != nil {
		return err
	}
	for i, s := range c.servers {
		if s.ID == id {
			c.servers[i].Address = addr
			return nil
		}
	}
	c.servers = append(c.servers, raftnode.ServerInfo{ID: id, Address: addr, Voter: voter})
	return nil
}

// RemoveServer removes a server.
func (n *Node) RemoveServer(_ context.Context, id string) error {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := n.leaderLocked(); err != nil {
		return err
	}
	i := slices.IndexFunc(c.servers, func(s raftnode.ServerInfo) bool { return s.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: %q", raftnode.ErrUnknownServer, id)
	}
	c.servers = slices.Delete(c.servers, i, i+1)
	if id == c.leader {
		c.leader = ""
	}
	return nil
}

// TransferLeadership makes id lead, or the first other voter when id is "",
// and returns the new leader.
func (n *Node) TransferLeadership(_ context.Context, id string) (string, error) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := n.leaderLocked(); err != nil {
		return "", err
	}
	for _, s := range c.servers {
		if s.Voter && s.ID != n.id && (id == "" || s.ID == id) {
			c.leader = s.ID
			c.term++
			return s.ID, nil
		}
	}
	return "", fmt.Errorf("%w: %q", raftnode.ErrUnknownServer, id)
}

// RestoreCluster replaces the shared record set, at the next index.
func (n *Node) RestoreCluster(_ context.Context, snapshot io.Reader) error {
	data, err := io.ReadAll(snapshot)
	if err != nil {
		return err
	}
	v, err := fsm.ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		return err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := n.leaderLocked(); err != nil {
		return err
	}
	var services []*fsm.Service
	for s := range v.Services() {
		services = append(services, s)
	}
	var sls []*fsm.EndpointSlice
	for e := range v.Slices() {
		sls = append(sls, e)
	}
	c.view = fsm.NewView(c.view.Index()+1, services, sls)
	return nil
}

var _ admin.Node = (*Node)(nil)
