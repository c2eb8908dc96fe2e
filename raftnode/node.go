package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/boltguard"
	"github.com/kdnsd/kdnsd/raftauth"
)

// Peer is one member of the static bootstrap configuration.
type Peer struct {
	ID   string
	Addr string // host:port of its Raft transport
}

// ParsePeers reads "id=host:port,id=host:port".
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, addr, ok := strings.Cut(item, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want id=host:port", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %w", item, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %q appears twice", id)
		}
		seen[id] = true
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	return peers, nil
}

// Config configures a Node.
type Config struct {
	ID        string
	BindAddr  string // where the Raft transport listens
	Advertise string // the address peers dial; BindAddr when empty
	DataDir   string
	Logger    *slog.Logger
	// RaftLogLevel is hashicorp/raft's own log level ("info" by default).
	RaftLogLevel string
	// Auth, when set, carries Raft over mutual TLS and binds every RPC to
	// the certificate it arrives with (see raftauth). Nil is plaintext.
	Auth *raftauth.Plane
	// Discovered, when set, gives a server's current address by ID (from
	// Kubernetes discovery); the Raft configuration's address is the fallback.
	Discovered func(id string) (addr string, ok bool)
}

// Node is this replica's member of the Raft group.
type Node struct {
	id        string
	raft      *raft.Raft
	store     *fsm.Store
	transport *raft.NetworkTransport
	logStore  *raftboltdb.BoltStore
	logDB     *bolt.DB // logStore's own (ReleaseLogMapping)
	auth      *raftauth.Plane
	inc       *incarnation
	rejected  *rejections
	log       *slog.Logger
	leader    *leadership
	stop      chan struct{}
	stopped   chan struct{}
	// configAddrs caches the Raft configuration's addresses by server ID,
	// for the transport's fallback.
	configAddrs atomic.Pointer[map[string]string]
	// raftStarted is set once raft is assigned: the transport takes
	// connections (and asks mayVote) a moment before.
	raftStarted atomic.Bool
	// commandVersion is what SetCommandVersion decided; see CommandVersion.
	commandVersion atomic.Pointer[commandVersion]
	// handingOver is set while handOverLeadership transfers leadership.
	handingOver atomic.Bool
	// announce tells the followers of each commit at once (announce.go).
	announce *announcer
}

// Start opens the Raft stores in cfg.DataDir and joins the group. A replica
// without state waits to be reached by a leader, or to be told to Bootstrap
// (membership decides which). store must already be open: it is served from
// before Raft starts.
func Start(cfg Config, store *fsm.Store) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("raft: an id is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.BindAddr
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("raft: advertise address %q: %w", cfg.Advertise, err)
	}
	if advertise.IP == nil || advertise.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft: advertise address %q must name a reachable IP, not an unspecified one", cfg.Advertise)
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	level := cfg.RaftLogLevel
	if level == "" {
		level = "info"
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.LevelFromString(level), Output: os.Stderr})

	var logStore *raftboltdb.BoltStore
	err = boltguard.Open(func() (err error) {
		logStore, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raft: open log store %s: %w (the file is kept as it is)", filepath.Join(raftDir, "raft.db"), err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raft: snapshot store: %w", err)
	}
	if err := catchUpFromSnapshot(store, snaps, cfg.Logger); err != nil {
		logStore.Close()
		return nil, err
	}
	existing, err := raft.HasExistingState(logStore, logStore, snaps)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raft: read state: %w", err)
	}
	if !existing && store.View().Index() > 0 {
		// The records would claim log indexes that a new Raft log reuses,
		// and the entries at those indexes would be skipped.
		logStore.Close()
		return nil, fmt.Errorf("raft: %s holds records up to log index %d but %s has no Raft state; "+
			"move the store away too (the replica then rejoins and receives the records) or restore the Raft state",
			store.Path(), store.View().Index(), raftDir)
	}
	inc, err := loadIncarnation(raftDir, existing)
	if err != nil {
		logStore.Close()
		return nil, err
	}
	n := &Node{
		id: cfg.ID, store: store, logStore: logStore, logDB: logDB(logStore), log: cfg.Logger, auth: cfg.Auth, inc: inc, rejected: newRejections(),
		leader: newLeadership(), stop: make(chan struct{}), stopped: make(chan struct{}),
		announce: newAnnouncer(),
	}
	n.configAddrs.Store(&map[string]string{})
	trans, netTrans, err := n.newTransport(cfg.BindAddr, advertise, cfg.Auth, &addressProvider{discovered: cfg.Discovered, configured: n.configuredAddr}, hlog)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raft: listen on %s: %w", cfg.BindAddr, err)
	}
	if id, st := inc.get(); st != AdmissionAdmitted {
		cfg.Logger.Info("started without raft state: a new member that will not vote until the leader admits it", "incarnation", id, "admission", st)
	}

	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	rc.NotifyCh = notify
	// The store is durable and already published; replaying the last
	// snapshot into it on start would only move it backwards.
	rc.NoSnapshotRestoreOnStart = true
	// A LAN of a few pods: detect a dead leader within about a second.
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	// An idle leader sends an AppendEntries every CommitTimeout to twice
	// that. Followers learn of a commit at once from the announcer's barrier
	// (announce.go), so this only bounds how late they learn of one made
	// otherwise (a membership change, a barrier); raft's default, 50 ms, for
	// ~20 tiny RPCs a second per follower.
	rc.CommitTimeout = 50 * time.Millisecond
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = 4096
	rc.TrailingLogs = 4096

	r, err := raft.NewRaft(rc, &stateMachine{store: store, snaps: snaps, log: cfg.Logger, stop: n.stop}, logStore, logStore, snaps, trans)
	if err != nil {
		netTrans.Close()
		logStore.Close()
		return nil, fmt.Errorf("raft: %w", err)
	}
	n.raft, n.transport = r, netTrans
	n.raftStarted.Store(true)
	n.refreshConfiguredAddrs()
	go n.followLeadership(notify)
	go n.announce.run(n)
	return n, nil
}

func containsID(peers []Peer, id string) bool {
	for _, p := range peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// catchUpFromSnapshot covers a crash between Raft persisting a snapshot sent
// by the leader and the store applying it: Raft would then start after that
// snapshot while the store is older, so the store restores it first. Which is
// newer is read from the snapshot's own records index: Raft's index of the
// snapshot also counts entries that carry no records (elections,
// configuration changes).
func catchUpFromSnapshot(store *fsm.Store, snaps *raft.FileSnapshotStore, log *slog.Logger) error {
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("raft: list snapshots: %w", err)
	}
	if len(list) == 0 || list[0].Index <= store.View().Index() {
		return nil
	}
	open := func() (*raft.SnapshotMeta, io.ReadCloser, error) {
		meta, rc, err := snaps.Open(list[0].ID)
		if err != nil {
			return nil, nil, fmt.Errorf("raft: open snapshot %s: %w", list[0].ID, err)
		}
		return meta, rc, nil
	}
	_, rc, err := open()
	if err != nil {
		return err
	}
	snap, err := fsm.ReadSnapshot(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("raft: snapshot %s: %w", list[0].ID, err)
	}
	if snap.Index() <= store.View().Index() {
		return nil
	}
	meta, rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	log.Info("state is older than the last raft snapshot; restoring it", "snapshot_index", meta.Index, "applied_index", store.View().Index())
	if err := store.Restore(rc, meta.Index); err != nil {
		return fmt.Errorf("raft: restore snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

// followLeadership keeps n.leader equal to Raft's state. Notifications only
// prompt a re-read; the timer covers any that were missed.
func (n *Node) followLeadership(notify <-chan bool) {
	defer close(n.stopped)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		leader := n.raft.State() == raft.Leader
		n.leader.set(leader, n.raft.CurrentTerm())
		n.refreshConfiguredAddrs()
		n.handOverLeadership()
		select {
		case <-n.stop:
			n.leader.set(false, 0)
			return
		case <-notify:
		case <-tick.C:
		}
	}
}

// WhileLeader runs fn for each term in which this replica leads, at most one
// at a time, cancelling its context when the term ends; it returns when ctx
// ends and fn has returned.
func (n *Node) WhileLeader(ctx context.Context, fn func(context.Context)) {
	n.leader.whileLeader(ctx, fn)
}

// maxReadyLag is how many committed entries a replica may not have applied
// yet and still be ready: a little lag under load is normal, a replica
// replaying the log after joining is not ready.
const maxReadyLag = 64

// CaughtUp reports whether this replica has applied what it knows to be
// committed. A replica that knows of no leader (no quorum) counts as caught
// up: it serves what it has.
func (n *Node) CaughtUp() bool {
	if id, _ := n.Leader(); id == "" {
		return true
	}
	return n.raft.AppliedIndex()+maxReadyLag >= n.raft.CommitIndex()
}

// IsLeader reports whether this replica leads now.
func (n *Node) IsLeader() bool {
	leader, _, _ := n.leader.get()
	return leader
}

// Commit replicates cmds as one log entry and returns once the entry is
// applied on this replica, or ctx ends.
func (n *Node) Commit(ctx context.Context, cmds []fsm.Command) error {
	data, err := fsm.EncodeVersion(cmds, n.CommandVersion())
	if err != nil {
		return err
	}
	n.announce.begin()
	f := n.raft.Apply(data, 0)
	err = await(ctx, f)
	n.announce.end(err == nil)
	if err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// Barrier returns once every entry committed before it is applied here.
func (n *Node) Barrier(ctx context.Context) error { return await(ctx, n.raft.Barrier(0)) }

func await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return classify(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is what this replica knows of the group.
type Status struct {
	ID           string       `json:"id"`
	State        State        `json:"state"`
	Term         uint64       `json:"term"`
	LeaderID     string       `json:"leader_id"`
	LeaderAddr   string       `json:"leader_addr"`
	CommitIndex  uint64       `json:"commit_index"`
	LastLogIndex uint64       `json:"last_log_index"`
	AppliedIndex uint64       `json:"applied_index"` // the durable store's
	LastContact  time.Time    `json:"last_contact"`
	Servers      []ServerInfo `json:"servers"`
	// Incarnation is this member's identity since its Raft state was
	// created; a wiped replica comes back with a new one.
	Incarnation string `json:"incarnation,omitempty"`
	// Admission says whether it may vote (see Admission). Empty from a
	// replica older than admissions: it counts as admitted.
	Admission Admission `json:"admission,omitempty"`
	// MaxCommandVersion is the newest command format this replica's build
	// decodes; CommandVersion, on the leader, the format it writes now.
	MaxCommandVersion int `json:"max_command_version"`
	CommandVersion    int `json:"command_version,omitempty"`
	// ApplyBlocked says why this replica stopped applying the log, at entry
	// ApplyBlockedIndex (see fsm.BlockedError); empty while it applies.
	ApplyBlocked      string `json:"apply_blocked,omitempty"`
	ApplyBlockedIndex uint64 `json:"apply_blocked_index,omitempty"`
}

// ServerInfo is one member of the Raft configuration.
type ServerInfo struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// Status returns the current status.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	st := Status{
		ID:           n.id,
		State:        stateOf(n.raft.State()),
		Term:         n.raft.CurrentTerm(),
		LeaderID:     string(id),
		LeaderAddr:   string(addr),
		CommitIndex:  n.raft.CommitIndex(),
		LastLogIndex: n.raft.LastIndex(),
		AppliedIndex: n.store.View().Index(),
		LastContact:  n.raft.LastContact(),

		MaxCommandVersion: fsm.MaxCommandVersion,
	}
	if st.State == StateLeader {
		st.CommandVersion = n.CommandVersion()
	}
	if b := n.ApplyBlocked(); b != nil {
		st.ApplyBlocked, st.ApplyBlockedIndex = b.Error(), b.Index
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		n.observeConfiguration(f.Configuration())
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, ServerInfo{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
		}
	}
	st.Incarnation, st.Admission = n.inc.get() // after observing the configuration
	return st
}

// Shutdown leaves the group cleanly. The leadership signal drops first, so
// this replica's leader-only work is told to stop before another replica can
// be elected; then a leader hands leadership to another voter, so the group
// does not wait for an election timeout.
func (n *Node) Shutdown() error {
	close(n.stop)
	<-n.stopped
	if n.raft.State() == raft.Leader {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("leadership transfer before shutdown failed", "err", err)
		}
	}
	err := n.raft.Shutdown().Error()
	return errors.Join(err, n.transport.Close(), n.logStore.Close())
}
