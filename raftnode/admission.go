package raftnode

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
)

// Admission says whether this replica may vote. A replica that started
// without Raft state (new, or its volume was wiped) has forgotten whatever it
// acknowledged before: if it voted, a candidate missing committed entries
// could win with its vote. So it neither votes nor campaigns until the
// leader has seen it as a non-voter and then promoted it once it caught up
// (membership does that).
type Admission string

const (
	// AdmissionBlank: started without state, not yet seen as a non-voter.
	AdmissionBlank Admission = "blank"
	// AdmissionStaged: seen as a non-voter since the blank start; the
	// leader may promote it once it has caught up.
	AdmissionStaged Admission = "staged"
	// AdmissionAdmitted: may vote. A replica that bootstrapped the cluster,
	// or was promoted after being staged, or had state when it first ran
	// with this code.
	AdmissionAdmitted Admission = "admitted"
)

// incarnation is this replica's identity as a member, persisted next to the
// Raft stores so that it is wiped with them: a wiped replica is a new member
// under the same server ID.
type incarnation struct {
	path string

	mu    sync.Mutex
	ID    string    `json:"id"`
	State Admission `json:"admission"`
}

const incarnationFile = "incarnation.json"

// loadIncarnation reads the incarnation in raftDir. Without Raft state the
// replica is a new, blank member whatever the file says; with state and no
// file (a data dir from before incarnations) it is admitted.
func loadIncarnation(raftDir string, hasState bool) (*incarnation, error) {
	inc := &incarnation{path: filepath.Join(raftDir, incarnationFile)}
	data, err := os.ReadFile(inc.path)
	switch {
	case err == nil && hasState:
		if err := json.Unmarshal(data, inc); err != nil || inc.ID == "" {
			return nil, fmt.Errorf("raft: %s is corrupt (%v); it is kept as it is", inc.path, err)
		}
		return inc, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("raft: %w", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	inc.ID = hex.EncodeToString(b[:])
	inc.State = AdmissionBlank
	if hasState {
		inc.State = AdmissionAdmitted
	}
	return inc, inc.saveLocked()
}

func (inc *incarnation) saveLocked() error {
	data, err := json.Marshal(inc)
	if err != nil {
		return err
	}
	tmp := inc.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("raft: write %s: %w", tmp, err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("raft: sync %s: %w", tmp, err)
	}
	return os.Rename(tmp, inc.path)
}

func (inc *incarnation) get() (id string, state Admission) {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	return inc.ID, inc.State
}

func (inc *incarnation) mayVote() bool {
	_, st := inc.get()
	return st == AdmissionAdmitted
}

// advance moves the admission forward (blank → staged → admitted, or
// straight to admitted on a bootstrap) and persists it; it never moves back.
func (inc *incarnation) advance(to Admission) (changed bool, err error) {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	rank := map[Admission]int{AdmissionBlank: 0, AdmissionStaged: 1, AdmissionAdmitted: 2}
	if rank[to] <= rank[inc.State] {
		return false, nil
	}
	old := inc.State
	inc.State = to
	if err := inc.saveLocked(); err != nil {
		inc.State = old
		return false, err
	}
	return true, nil
}

// observeConfiguration advances the admission from what the current
// configuration says of this replica: a non-voter is staged; a voter that
// was staged has been promoted by a leader that saw it caught up. Only once
// its own log holds everything it knows to be committed does it take the
// promotion as its own: a replica replaying an old log passes through the
// configurations of its previous incarnation, which it must not count.
func (n *Node) observeConfiguration(cfg raft.Configuration) {
	_, st := n.inc.get()
	if st == AdmissionAdmitted {
		return
	}
	for _, s := range cfg.Servers {
		if string(s.ID) != n.id {
			continue
		}
		next := st
		switch {
		case s.Suffrage != raft.Voter:
			next = AdmissionStaged
		case st == AdmissionStaged && n.logCaughtUp():
			next = AdmissionAdmitted
		}
		changed, err := n.inc.advance(next)
		if err != nil {
			n.log.Error("cannot record admission", "err", err)
		} else if changed {
			n.log.Info("raft admission", "state", next)
		}
	}
}

// mayVote reports whether this replica may vote or campaign now. A staged
// replica looks at the configuration first: the leader may have promoted it
// since the last look (it asks for a vote right after, in a transfer).
func (n *Node) mayVote() bool {
	if n.inc.mayVote() {
		return true
	}
	if _, st := n.inc.get(); st == AdmissionStaged && n.raftStarted.Load() {
		n.refreshConfiguredAddrs()
	}
	return n.inc.mayVote()
}

// logCaughtUp reports whether this replica's log holds every entry it knows
// to be committed (a commit index it learned from a leader).
func (n *Node) logCaughtUp() bool {
	commit := n.raft.CommitIndex()
	return commit > 0 && n.raft.LastIndex() >= commit
}
