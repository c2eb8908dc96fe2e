package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kdnsd/kdnsd/raftnode"
)

// Static runs a Raft group of a fixed peer list (kdnsd serve --peers) by the
// same rules as the StatefulSet reconciler, without the Kubernetes API:
//
//   - Bootstrap: a replica without state bootstraps the peer list only when
//     every other peer answers its /status with no state; if any has state,
//     a cluster exists and this replica waits to be reached by its leader
//     (a wiped replica never starts a second cluster).
//   - Reconcile, while leading: a voter that started blank is demoted, and
//     promoted again once it has caught up (see admission.go); the command
//     format follows what every server decodes (see versions.go; a server
//     not in the peer list, e.g. a read replica added by hand, is not
//     probed and counts as format 1).
type Static struct {
	self     string
	peers    []raftnode.Peer
	status   map[string]string // other peer's ID → host:port of its /status page
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
}

// NewStatic returns the membership of a fixed peer list; status gives each
// peer's /status address (host:port).
func NewStatic(self string, peers []raftnode.Peer, status map[string]string, log *slog.Logger) (*Static, error) {
	if !slices.ContainsFunc(peers, func(p raftnode.Peer) bool { return p.ID == self }) {
		return nil, fmt.Errorf("membership: peers %v do not include %q", peers, self)
	}
	others := map[string]string{}
	for _, p := range peers {
		if p.ID == self {
			continue
		}
		addr, ok := status[p.ID]
		if !ok {
			return nil, fmt.Errorf("membership: no status address for peer %q", p.ID)
		}
		others[p.ID] = addr
	}
	if log == nil {
		log = slog.Default()
	}
	return &Static{self: self, peers: peers, status: others, interval: time.Second, timeout: DefaultProbeTimeout, log: log}, nil
}

// probe asks every other peer for its status, at once.
func (s *Static) probe(ctx context.Context) map[string]probeResult {
	return probeEach(ctx, s.timeout, s.status, fetchStatus)
}

// Bootstrap returns once this replica has Raft state: it bootstraps the
// peer list when every peer says it has none, or is reached by the leader
// of the cluster that exists. It returns early only when ctx ends.
func (s *Static) Bootstrap(ctx context.Context, node Node) error {
	waiting := ""
	for !node.HasState() {
		why := s.bootstrapBlocker(ctx)
		if why == "" {
			err := node.Bootstrap(s.peers)
			switch {
			case err == nil:
				s.log.Info("bootstrapped a new cluster", "peers", len(s.peers))
				return nil
			case !errors.Is(err, raftnode.ErrCantBootstrap):
				return err
			}
		}
		if why != waiting {
			waiting = why
			s.log.Info("not bootstrapping", "reason", why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.interval):
		}
	}
	return nil
}

// bootstrapBlocker is why this replica may not bootstrap now, "" if it may.
func (s *Static) bootstrapBlocker(ctx context.Context) string {
	results := s.probe(ctx)
	for _, id := range sortedNames(results) {
		switch r := results[id]; {
		case r.err != nil:
			return fmt.Sprintf("cannot tell whether peer %s has raft state: %v", id, r.err)
		case r.hasState() && !sameNewCluster(r.status, s.peers):
			return fmt.Sprintf("peer %s already belongs to a raft cluster: waiting for its leader to reach this replica", id)
		}
	}
	return ""
}

// Reconcile applies the admission rules while this replica leads; it
// returns when ctx (the leadership term) ends.
func (s *Static) Reconcile(ctx context.Context, node Node) {
	lastNote := ""
	for {
		note := s.round(ctx, node)
		if note != lastNote && note != "" {
			s.log.Info("membership not converged", "notes", note)
		}
		lastNote = note
		wait := s.interval
		if note != "" {
			wait = s.interval / 4 // a replica is catching up: promote it soon
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// round makes at most one change and returns what waits.
func (s *Static) round(ctx context.Context, node Node) string {
	servers, err := node.Servers()
	if err != nil {
		return err.Error()
	}
	health := s.probe(ctx)
	self := node.Status()
	health[s.self] = probeResult{status: self}
	if err := node.SetCommandVersion(commandVersion(servers, health)); err != nil {
		return "setting the command format: " + err.Error()
	}
	leaderApplied := self.AppliedIndex
	for _, srv := range servers {
		r, known := health[srv.ID]
		if !known || srv.ID == s.self {
			continue // this replica, or a server an operator added by hand
		}
		var act *action
		switch {
		case mustDemote(srv, r, s.self):
			act = &action{kind: actDemote, id: srv.ID, why: demoteWhy}
		case !srv.Voter:
			ok, why := promotable(r, leaderApplied)
			if !ok {
				return srv.ID + " is staged as non-voter: " + why
			}
			act = &action{kind: actPromote, id: srv.ID, addr: srv.Address, voter: true, why: why}
		default:
			continue
		}
		if err := act.apply(ctx, node); err != nil {
			return fmt.Sprintf("%s failed: %v", act, err)
		}
		s.log.Info("raft membership changed", "change", act.String())
		return "changed " + act.id
	}
	return ""
}
