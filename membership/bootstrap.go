package membership

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kdnsd/kdnsd/raftnode"
)

// Bootstrap makes node part of a cluster. It returns nil at once when node
// has Raft state. Otherwise, on one of the first BootstrapExpect pods of the
// voter StatefulSet, it waits until all of them exist with IPs and every
// other pod of the selector that has an IP answers its probe without state,
// and then bootstraps the configuration of those BootstrapExpect pods,
// sorted by ordinal, which every one of them computes alike. Any other
// replica (a non-voter, a higher ordinal), and any replica while some peer
// has state or cannot be probed, only waits for the leader to add it.
//
// Bootstrap returns nil once node has state (bootstrapped here or replicated
// from a leader), or ctx's error when ctx ends first (or before Start has
// synced the caches).
func (m *Membership) Bootstrap(ctx context.Context, node Node) error {
	if !m.waitSynced(ctx) {
		return ctx.Err()
	}
	defer m.setWaiting("")
	retry := min(m.cfg.Interval, time.Second)
	for {
		if node.HasState() {
			return nil
		}
		changed := m.changes()
		peers, reason := m.bootstrapPeers(ctx)
		if peers != nil && ctx.Err() == nil && !node.HasState() {
			err := node.Bootstrap(peers)
			switch {
			case err == nil:
				m.log.Info("bootstrapped a new raft cluster", "peers", fmt.Sprint(peers))
				return nil
			case errors.Is(err, raftnode.ErrCantBootstrap):
				return nil // it has state after all
			default:
				reason = "bootstrap failed: " + err.Error()
			}
		}
		m.setWaiting(reason)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// bootstrapPeers returns the configuration to bootstrap now, or nil and why
// not.
func (m *Membership) bootstrapPeers(ctx context.Context) ([]raftnode.Peer, string) {
	const join = "; waiting for the leader to reach this replica"
	if !m.cfg.Voter {
		return nil, "a non-voter never bootstraps" + join
	}
	n := m.cfg.BootstrapExpect
	if o, ok := ordinal(m.cfg.Self, m.cfg.StatefulSet); !ok || o >= n {
		return nil, fmt.Sprintf("%s is not one of the %d bootstrap voters %s-0…%s-%d%s",
			m.cfg.Self, n, m.cfg.StatefulSet, m.cfg.StatefulSet, n-1, join)
	}
	v := m.snapshot()
	peers := make([]raftnode.Peer, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s-%d", m.cfg.StatefulSet, i)
		p, ok := v.pods[name]
		switch {
		case !ok:
			return nil, fmt.Sprintf("waiting for pod %s (bootstrap expects %d voters)", name, n)
		case p.deleting:
			return nil, fmt.Sprintf("pod %s is being deleted", name)
		case p.ip == "":
			return nil, fmt.Sprintf("waiting for pod %s to have an IP", name)
		case p.nonVoter:
			return nil, fmt.Sprintf("pod %s is labelled %s=false but bootstrap expects it to vote", name, VoterLabel)
		}
		peers = append(peers, raftnode.Peer{ID: name, Addr: m.raftAddr(p.ip)})
	}
	// Every pod that could be running kdnsd must say it has no state: a
	// cluster may live on in any of them, not only the first n.
	var targets []pod
	for _, name := range sortedNames(v.pods) {
		if p := v.pods[name]; name != m.cfg.Self && p.ip != "" {
			targets = append(targets, p)
		}
	}
	results := m.probeAll(ctx, targets)
	for _, p := range targets {
		r := results[p.name]
		switch {
		case r.err != nil:
			return nil, fmt.Sprintf("cannot tell whether pod %s has raft state: %v", p.name, r.err)
		case r.hasState() && !sameNewCluster(r.status, peers):
			return nil, fmt.Sprintf("pod %s already belongs to a raft cluster%s", p.name, join)
		}
	}
	return peers, ""
}

// setWaiting records (and logs, when it changes) why Bootstrap waits.
func (m *Membership) setWaiting(reason string) {
	old := m.waiting.Swap(&reason)
	if reason != "" && (old == nil || *old != reason) {
		m.log.Info("not bootstrapping", "reason", reason)
	}
}

// waitingReason is why Bootstrap waits now, "" when it does not.
func (m *Membership) waitingReason() string {
	if r := m.waiting.Load(); r != nil {
		return *r
	}
	return ""
}
