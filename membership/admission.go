package membership

import (
	"fmt"
	"slices"

	"github.com/kdnsd/kdnsd/raftnode"
)

// promoteLag is how many entries the leader has committed that a staged
// voter may not have applied yet when it is promoted: it votes only once it
// holds (nearly) everything it could be asked to vouch for.
const promoteLag = 64

// The admission rules, shared by the StatefulSet reconciler and the static
// one. A replica that started without Raft state (raftnode.AdmissionBlank)
// has forgotten what it acknowledged; as a voter it would count towards
// quorums it cannot honour. The leader demotes it, and promotes it again
// once it reports that it saw itself as a non-voter (staged) and has caught
// up. The replica itself refuses to vote until then (raftnode).

// mustDemote reports whether voter s, probed as r, has to become a
// non-voter first. The leader itself is never demoted here.
func mustDemote(s raftnode.ServerInfo, r probeResult, self string) bool {
	return s.Voter && s.ID != self && r.err == nil && r.status.Admission == raftnode.AdmissionBlank
}

// promotable reports whether a non-voter probed as r may become a voter,
// given how far the leader's records are applied (both sides count log
// indexes of record changes, so entries without records, elections and
// configuration changes, do not count as lag), and if not, why.
func promotable(r probeResult, leaderApplied uint64) (bool, string) {
	st := r.status
	switch {
	case r.err != nil:
		return false, "unreachable"
	case len(st.Servers) == 0:
		return false, "has no raft state yet"
	case st.Admission == raftnode.AdmissionBlank:
		return false, "has not yet seen itself as a non-voter"
	case st.AppliedIndex+promoteLag < leaderApplied:
		return false, fmt.Sprintf("catching up: applied %d of %d", st.AppliedIndex, leaderApplied)
	}
	return true, fmt.Sprintf("caught up: applied %d of %d", st.AppliedIndex, leaderApplied)
}

const demoteWhy = "it started without raft state (new volume): no vote until it has caught up"

// sameNewCluster reports whether a peer's Raft state is nothing but the
// bootstrap of peers (its log holds the bootstrap entry alone): the new
// cluster this replica would bootstrap too, started a moment earlier by a
// faster peer. Joining it loses nothing; a peer with more in its log belongs
// to a cluster that may have committed entries.
func sameNewCluster(st raftnode.Status, peers []raftnode.Peer) bool {
	if st.LastLogIndex > 1 || len(st.Servers) != len(peers) {
		return false
	}
	for _, p := range peers {
		if !slices.Contains(st.Servers, raftnode.ServerInfo{ID: p.ID, Address: p.Addr, Voter: true}) {
			return false
		}
	}
	return true
}
