package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
)

func (n *Node) configuredAddr(id string) (string, bool) {
	addr, ok := (*n.configAddrs.Load())[id]
	return addr, ok
}

func (n *Node) refreshConfiguredAddrs() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	addrs := map[string]string{}
	for _, s := range f.Configuration().Servers {
		addrs[string(s.ID)] = string(s.Address)
	}
	n.configAddrs.Store(&addrs)
	n.observeConfiguration(f.Configuration())
}

// HasState reports whether this replica has ever been part of a cluster:
// it has a Raft configuration with at least one server.
func (n *Node) HasState() bool {
	servers, err := n.Servers()
	return err == nil && len(servers) > 0
}

// Bootstrap starts a new cluster of peers. Every peer of a new cluster may
// call it with the same list; a replica that has state refuses with
// ErrCantBootstrap.
func (n *Node) Bootstrap(peers []Peer) error {
	if !containsID(peers, n.id) {
		return fmt.Errorf("raft: bootstrap peers %v do not include this replica %q", peers, n.id)
	}
	var servers []raft.Server
	for _, p := range peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter})
	}
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return err
	}
	// A member of a new cluster has forgotten nothing: it may vote.
	if _, err := n.inc.advance(AdmissionAdmitted); err != nil {
		return err
	}
	n.refreshConfiguredAddrs()
	return nil
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]ServerInfo, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, classify(err)
	}
	var out []ServerInfo
	for _, s := range f.Configuration().Servers {
		out = append(out, ServerInfo{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// membershipTimeout bounds how long a configuration change may wait to be
// enqueued; the context bounds the whole change.
const membershipTimeout = 10 * time.Second

// AddServer adds a server, or updates the address of one already there. It
// must run on the leader.
func (n *Node) AddServer(ctx context.Context, id, addr string, voter bool) error {
	if id == "" || addr == "" {
		return errors.New("a server needs an id and an address")
	}
	var f raft.IndexFuture
	if voter {
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, membershipTimeout)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, membershipTimeout)
	}
	err := await(ctx, f)
	n.refreshConfiguredAddrs()
	return err
}

// DemoteVoter makes a voter a non-voter, keeping it in the configuration. It
// must run on the leader.
func (n *Node) DemoteVoter(ctx context.Context, id string) error {
	err := await(ctx, n.raft.DemoteVoter(raft.ServerID(id), 0, membershipTimeout))
	n.refreshConfiguredAddrs()
	return err
}

// RemoveServer removes a server from the configuration. It must run on the
// leader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if _, ok := n.configuredAddr(id); !ok {
		n.refreshConfiguredAddrs()
		if _, ok := n.configuredAddr(id); !ok {
			return fmt.Errorf("%w: %q", ErrUnknownServer, id)
		}
	}
	err := await(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout))
	n.refreshConfiguredAddrs()
	return err
}

// TransferLeadership hands leadership to the voter id, or to the most
// up-to-date voter when id is empty, and returns the replica that leads
// then, once this one has heard of it (within newLeaderHeard; "" if not).
// It must run on the leader.
//
// hashicorp/raft gives a transfer one election timeout (500 ms here) to
// bring the target up to date, tell it to campaign and see it win, and
// answers "leadership transfer timeout" past it, even when the target wins
// a moment later: on a loaded machine the catching up alone can take that
// long (a CI run sent the target its TimeoutNow 860 ms after the transfer
// began; the admin command failed although the target went on to
// campaign). So after a timeout TransferLeadership watches where the
// leadership goes for transferSettle: to the target (or, none named, to
// any other replica) is success; staying here means another try, up to
// transferAttempts in all.
func (n *Node) TransferLeadership(ctx context.Context, id string) (string, error) {
	transfer := n.raft.LeadershipTransfer
	if id != "" {
		addr, ok := n.configuredAddr(id)
		if !ok {
			return "", fmt.Errorf("%w: %q", ErrUnknownServer, id)
		}
		transfer = func() raft.Future {
			return n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
		}
	}
	for attempt := 1; ; attempt++ {
		err := await(ctx, transfer())
		if err == nil {
			leader, _ := n.leadershipMoves(ctx, newLeaderHeard)
			return leader, nil
		}
		// A transfer still winding down (its TimeoutNow not yet answered)
		// refuses the next one as in progress.
		timedOut := err.Error() == "leadership transfer timeout" || errors.Is(err, raft.ErrLeadershipTransferInProgress)
		if !timedOut || attempt == transferAttempts {
			return "", err
		}
		leader, moved := n.leadershipMoves(ctx, transferSettle)
		switch {
		case !moved:
			if ctx.Err() != nil {
				return "", err // no new transfer for a caller who went away
			}
			continue // still here: try again
		case id == "" || leader == id:
			return leader, nil
		default:
			return "", fmt.Errorf("%w; %s leads now, not %s", err, leader, id)
		}
	}
}

// transferAttempts, transferSettle and newLeaderHeard: see
// TransferLeadership.
const (
	transferAttempts = 3
	transferSettle   = 2 * time.Second
	newLeaderHeard   = 5 * time.Second
)

// leadershipMoves waits up to d for a leader other than this replica, and
// returns it; false if this replica still leads (or none is known) then,
// or ctx ends first.
func (n *Node) leadershipMoves(ctx context.Context, d time.Duration) (string, bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for {
		if leader, _ := n.Leader(); leader != "" && leader != n.id {
			return leader, true
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-deadline:
			return "", false
		case <-tick.C:
		}
	}
}

// Leader returns the leader's ID and Raft address, empty when there is none.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// RestoreCluster replaces the state of the whole cluster with a snapshot (as
// written by fsm.WriteSnapshot): disaster recovery. It must run on the
// leader; the snapshot is replicated to every replica. A snapshot that does
// not read is refused before anything changes.
func (n *Node) RestoreCluster(_ context.Context, snapshot io.Reader) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	data, err := io.ReadAll(snapshot)
	if err != nil {
		return err
	}
	if _, err := fsm.ReadSnapshot(bytes.NewReader(data)); err != nil {
		return err
	}
	// Raft gives the restored state an index after its own log; the
	// snapshot's index, from another cluster, does not matter. The call is
	// waited for whatever ctx says (it is bounded by its own timeout): a
	// restore cut short by a shutdown makes hashicorp/raft panic.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(len(data))}
	if err := n.raft.Restore(meta, bytes.NewReader(data), time.Minute); err != nil {
		return classify(err)
	}
	// The records changed under the leader's watcher: it starts again and
	// compares the restored state with the API.
	n.leader.restart()
	return nil
}
