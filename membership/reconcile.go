package membership

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kdnsd/kdnsd/raftnode"
)

const (
	// changeTimeout bounds one configuration change.
	changeTimeout = 30 * time.Second
	// maxStepsPerRound bounds the changes of one round before the servers
	// are probed again.
	maxStepsPerRound = 16
	// eventDebounce lets a burst of pod events settle before a round.
	eventDebounce = 50 * time.Millisecond
)

// Reconcile keeps the Raft configuration in step with the StatefulSet while
// this replica leads: cmd runs it inside raftnode.Node.WhileLeader, so it
// runs once per leadership term and returns when ctx (the term) ends. It
// works in rounds, on every pod or StatefulSet event and every Interval
// (every second while a change is under way): probe every server, then make
// one change at a time until nothing is left to do. See the package comment
// for the rules. It waits for Start to sync the caches first.
func (m *Membership) Reconcile(ctx context.Context, node Node) {
	if !m.waitSynced(ctx) {
		return
	}
	m.log.Info("leading: reconciling raft membership with the statefulset")
	defer m.log.Info("no longer reconciling raft membership")
	r := &reconciler{m: m, node: node, downSince: map[string]time.Time{}}
	for {
		changed := m.changes()
		wait := m.cfg.Interval
		if r.round(ctx) {
			wait = min(wait, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
			t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(eventDebounce):
			}
		case <-t.C:
		}
	}
}

// reconciler is one leadership term's reconciliation.
type reconciler struct {
	m    *Membership
	node Node
	// downSince is when each server was first seen unreachable this term.
	downSince map[string]time.Time
	lastNotes string
}

// round probes the servers and applies changes until none is left, a change
// fails, or maxStepsPerRound is reached. It reports whether the next round
// should come soon.
func (r *reconciler) round(ctx context.Context) (soon bool) {
	m := r.m
	servers, err := r.node.Servers()
	if err != nil {
		m.log.Warn("reading the raft configuration", "err", err)
		return true
	}
	v := m.snapshot()
	health := r.probe(ctx, servers, v)
	for range maxStepsPerRound {
		if ctx.Err() != nil {
			return false
		}
		if leader, _ := r.node.Leader(); leader != m.cfg.Self {
			return true // not (or no longer) the leader this term thinks it is
		}
		r.gateCommandVersion(servers, health)
		in := planInput{
			self: m.cfg.Self, sts: m.cfg.StatefulSet, raftAddr: m.raftAddr,
			servers: servers, view: v, health: health, downSince: r.downSince,
			now: time.Now(), deadTimeout: m.cfg.DeadServerTimeout,
		}
		act, pending, notes := plan(in)
		if n := strings.Join(notes, "; "); n != r.lastNotes {
			r.lastNotes = n
			if n != "" {
				m.log.Info("membership not converged", "notes", n)
			}
		}
		if act == nil {
			return pending
		}
		if err := act.apply(ctx, r.node); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("raft membership change failed; will retry", "change", act.String(), "err", err)
			}
			return true
		}
		m.log.Info("raft membership changed", "change", act.String())
		if servers, err = r.node.Servers(); err != nil {
			return true
		}
		v = m.snapshot()
	}
	return true
}

// apply makes the change on node, the leader.
func (a action) apply(ctx context.Context, node Node) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	switch a.kind {
	case actDemote:
		return node.DemoteVoter(ctx, a.id)
	case actRemove:
		err := node.RemoveServer(ctx, a.id)
		if errors.Is(err, raftnode.ErrUnknownServer) {
			return nil
		}
		return err
	default:
		return node.AddServer(ctx, a.id, a.addr, a.voter)
	}
}

// probe probes every server of the configuration at its pod's IP and
// updates downSince. A server without a pod, or whose pod has no IP, is
// unreachable; this replica is reachable.
func (r *reconciler) probe(ctx context.Context, servers []raftnode.ServerInfo, v view) map[string]probeResult {
	var targets []pod
	for _, s := range servers {
		if p, ok := v.pods[s.ID]; ok && p.ip != "" && s.ID != r.m.cfg.Self {
			targets = append(targets, p)
		}
	}
	health := r.m.probeAll(ctx, targets)
	health[r.m.cfg.Self] = probeResult{status: r.node.Status()}
	now := time.Now()
	seen := map[string]bool{}
	for _, s := range servers {
		seen[s.ID] = true
		res, ok := health[s.ID]
		switch {
		case ok && res.err == nil:
			delete(r.downSince, s.ID)
		case r.downSince[s.ID].IsZero():
			r.downSince[s.ID] = now
			why := "no pod with an IP"
			if ok {
				why = res.err.Error()
			}
			r.m.log.Info("raft server unreachable", "server", s.ID, "reason", why)
		}
	}
	for id := range r.downSince {
		if !seen[id] {
			delete(r.downSince, id)
		}
	}
	return health
}

type actionKind int

const (
	actUpdate  actionKind = iota + 1 // a server's address changed
	actAdd                           // a new server, always as a non-voter first
	actPromote                       // a staged voter has caught up
	actDemote                        // a voter that lost its state
	actRemove
)

// action is one configuration change.
type action struct {
	kind  actionKind
	id    string
	addr  string
	voter bool
	why   string
}

func (a action) String() string {
	switch a.kind {
	case actUpdate:
		return fmt.Sprintf("update %s to %s (%s)", a.id, a.addr, a.why)
	case actAdd:
		return fmt.Sprintf("add %s at %s as non-voter (%s)", a.id, a.addr, a.why)
	case actPromote:
		return fmt.Sprintf("promote %s to voter (%s)", a.id, a.why)
	case actDemote:
		return fmt.Sprintf("demote %s to non-voter (%s)", a.id, a.why)
	default:
		return fmt.Sprintf("remove %s (%s)", a.id, a.why)
	}
}

// planInput is everything plan decides from.
type planInput struct {
	self, sts string
	raftAddr  func(ip string) string
	servers   []raftnode.ServerInfo
	view      view
	health    map[string]probeResult // by server ID; absent = unreachable
	downSince map[string]time.Time
	now       time.Time
	// deadTimeout is Config.DeadServerTimeout.
	deadTimeout time.Duration
}

func (in *planInput) reachable(id string) bool {
	r, ok := in.health[id]
	return ok && r.err == nil
}

// wanted says whether the StatefulSets want server id, and as a voter.
func (in *planInput) wanted(id string, current *raftnode.ServerInfo) (want, voter bool) {
	if p, ok := in.view.pods[id]; ok && p.nonVoter {
		return true, false
	}
	n, ok := ordinal(id, in.sts)
	switch {
	case !ok:
		return false, false
	case in.view.replicas < 0:
		// The StatefulSet is unknown (deleted, or not yet seen): keep what
		// is there, add nothing.
		if current != nil {
			return true, current.Voter
		}
		return false, false
	default:
		return n < in.view.replicas, true
	}
}

// plan returns the next change to make (nil when there is none), whether
// a change is under way that needs a prompt re-probe (a staged voter), and
// notes on what waits.
func plan(in planInput) (next *action, pending bool, notes []string) {
	servers := slices.Clone(in.servers)
	slices.SortFunc(servers, func(a, b raftnode.ServerInfo) int { return cmp.Compare(a.ID, b.ID) })
	byID := map[string]*raftnode.ServerInfo{}
	for i := range servers {
		byID[servers[i].ID] = &servers[i]
	}

	// Addresses first: they keep the others reachable.
	for _, s := range servers {
		p, ok := in.view.pods[s.ID]
		if !ok || p.ip == "" || p.deleting {
			continue
		}
		if addr := in.raftAddr(p.ip); addr != s.Address {
			return &action{kind: actUpdate, id: s.ID, addr: addr, voter: s.Voter, why: "pod IP changed"}, true, notes
		}
	}

	// A voter whose state was wiped stops counting towards quorums before
	// anything else changes.
	for _, s := range servers {
		if mustDemote(s, in.health[s.ID], in.self) {
			return &action{kind: actDemote, id: s.ID, addr: s.Address, why: demoteWhy}, true, notes
		}
	}

	// New servers, as non-voters: a voter is promoted only once it answers,
	// so an unreachable new pod never counts towards the quorum.
	for _, name := range sortedNames(in.view.pods) {
		p := in.view.pods[name]
		if byID[name] != nil || p.ip == "" || p.deleting {
			continue
		}
		if want, voter := in.wanted(name, nil); want {
			why := "read replica"
			if voter {
				why = "voter, staged until it has caught up"
			}
			return &action{kind: actAdd, id: name, addr: in.raftAddr(p.ip), why: why}, true, notes
		}
	}

	for _, s := range servers {
		if s.Voter {
			continue
		}
		if want, voter := in.wanted(s.ID, &s); want && voter {
			ok, why := promotable(in.health[s.ID], in.health[in.self].status.AppliedIndex)
			if ok {
				return &action{kind: actPromote, id: s.ID, addr: s.Address, voter: true, why: why}, true, notes
			}
			pending = true
			notes = append(notes, s.ID+" is staged as non-voter: "+why)
		}
	}

	leader := in.self
	var candidates []action
	for _, s := range servers {
		if s.ID == leader {
			continue
		}
		if want, _ := in.wanted(s.ID, &s); want {
			continue
		}
		p, present := in.view.pods[s.ID]
		_, isOrdinal := ordinal(s.ID, in.sts)
		scaledDown := isOrdinal && in.view.replicas >= 0 && (!present || p.deleting)
		since := in.downSince[s.ID]
		dead := !in.reachable(s.ID) && !since.IsZero() && in.now.Sub(since) >= in.deadTimeout
		var why string
		switch {
		case scaledDown && !present:
			why = fmt.Sprintf("scaled down to %d replicas and its pod is gone", in.view.replicas)
		case scaledDown:
			why = fmt.Sprintf("scaled down to %d replicas and its pod is being deleted", in.view.replicas)
		case dead:
			why = fmt.Sprintf("unreachable for %s and not wanted", in.now.Sub(since).Round(time.Second))
		default:
			if !in.reachable(s.ID) && !since.IsZero() {
				notes = append(notes, fmt.Sprintf("%s is not wanted and unreachable since %s; removed after %s", s.ID, since.Format(time.RFC3339), in.deadTimeout))
			}
			continue
		}
		if ok, healthy, total := in.quorumWithout(servers, s.ID); !ok {
			notes = append(notes, fmt.Sprintf("not removing %s (%s): only %d of the %d voters left would be reachable, no majority", s.ID, why, healthy, total))
			continue
		}
		candidates = append(candidates, action{kind: actRemove, id: s.ID, why: why})
	}
	if len(candidates) == 0 {
		return nil, pending, notes
	}
	// Unreachable servers first (they weigh on the quorum), then the
	// highest ordinal, as a StatefulSet scales down.
	slices.SortStableFunc(candidates, func(a, b action) int {
		if ra, rb := in.reachable(a.id), in.reachable(b.id); ra != rb {
			if !ra {
				return -1
			}
			return 1
		}
		oa, _ := ordinal(a.id, in.sts)
		ob, _ := ordinal(b.id, in.sts)
		if c := cmp.Compare(ob, oa); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
	return &candidates[0], pending, notes
}

// quorumWithout reports whether, with server id removed, the reachable
// voters left are a majority of the voters left.
func (in *planInput) quorumWithout(servers []raftnode.ServerInfo, id string) (ok bool, healthy, total int) {
	for _, s := range servers {
		if !s.Voter || s.ID == id {
			continue
		}
		total++
		if in.reachable(s.ID) {
			healthy++
		}
	}
	return total > 0 && healthy >= total/2+1, healthy, total
}
