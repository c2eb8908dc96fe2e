package raftnode

import (
	"log/slog"
	"sync"
)

// Why an RPC was refused before it reached raft.
const (
	// rejectIdentity: the sender's claimed server ID or address is not the
	// one its certificate names (or it has none).
	rejectIdentity = "identity"
	// rejectNotAdmitted: a vote, pre-vote or election request to a replica
	// that may not vote yet.
	rejectNotAdmitted = "not_admitted"
)

// maxLoggedPeers bounds the memory of who was already logged: without TLS
// the claimed IDs are the sender's to choose.
const maxLoggedPeers = 1024

// rejections counts refused RPCs by reason, and logs the first refusal of
// each reason and peer (a misconfigured or hostile peer retries many times
// a second).
type rejections struct {
	mu     sync.Mutex
	counts map[string]uint64
	logged map[string]bool
}

func newRejections() *rejections {
	return &rejections{counts: map[string]uint64{}, logged: map[string]bool{}}
}

// add records a refusal and returns err.
func (r *rejections) add(reason, peer string, err error, log *slog.Logger) error {
	r.mu.Lock()
	r.counts[reason]++
	key := reason + "\x00" + peer
	first := !r.logged[key] && len(r.logged) < maxLoggedPeers
	if first {
		r.logged[key] = true
	}
	r.mu.Unlock()
	if first {
		log.Warn("refused a raft RPC (logged once per peer and reason)", "reason", reason, "peer", peer, "err", err)
	}
	return err
}

// RejectedRPCs returns how many RPCs were refused before reaching raft, by
// reason ("identity", "not_admitted").
func (n *Node) RejectedRPCs() map[string]uint64 {
	n.rejected.mu.Lock()
	defer n.rejected.mu.Unlock()
	out := map[string]uint64{rejectIdentity: 0, rejectNotAdmitted: 0}
	for k, v := range n.rejected.counts {
		out[k] = v
	}
	return out
}
