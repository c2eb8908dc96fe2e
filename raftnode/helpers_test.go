package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftauth"

	"github.com/kdnsd/kdnsd/test/wait"
)

// member is one replica of an in-process test cluster: a real store and a
// real Raft node talking TCP on loopback.
type member struct {
	id, addr, dir string
	auth          *raftauth.Plane
	store         *fsm.Store
	node          *Node
}

// freeAddr returns a loopback address that was free a moment ago and that
// it has not returned before: the kernel may hand a port it just freed to
// the next listener, and two members on one port cannot both start.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
	t.Fatal("no loopback port that was not handed out already")
	return ""
}

// handedOut holds every address freeAddr returned.
var handedOut sync.Map

// newCluster makes n members that bootstrap the same configuration.
func newCluster(t testing.TB, n int) []*member {
	t.Helper()
	var peers []Peer
	var ms []*member
	for i := range n {
		m := &member{id: fmt.Sprintf("r%d", i), addr: freeAddr(t), dir: t.TempDir()}
		peers = append(peers, Peer{ID: m.id, Addr: m.addr})
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.start(t, peers)
	}
	return ms
}

func (m *member) start(t testing.TB, peers []Peer) {
	t.Helper()
	store, err := fsm.Open(filepath.Join(m.dir, "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	node, err := Start(Config{ID: m.id, BindAddr: m.addr, DataDir: m.dir, RaftLogLevel: "error", Auth: m.auth}, store)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	// Every member of these clusters starts together, new or restarted.
	if peers != nil {
		if err := node.Bootstrap(peers); err != nil && !errors.Is(err, ErrCantBootstrap) {
			node.Shutdown()
			store.Close()
			t.Fatal(err)
		}
	}
	m.store, m.node = store, node
	t.Cleanup(m.stop)
}

// stop shuts the member down; it is safe to call twice.
func (m *member) stop() {
	if m.node == nil {
		return
	}
	m.node.Shutdown()
	m.store.Close()
	m.node, m.store = nil, nil
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func leaderOf(t testing.TB, ms []*member) *member {
	t.Helper()
	var leader *member
	wait.For(t, "a leader", 10*time.Second, func() bool {
		leader = nil
		for _, m := range ms {
			if m.node != nil && m.node.IsLeader() {
				leader = m
			}
		}
		return leader != nil
	})
	return leader
}

// peersOf is the bootstrap configuration of ms.
func peersOf(ms []*member) []Peer {
	var peers []Peer
	for _, m := range ms {
		peers = append(peers, Peer{ID: m.id, Addr: m.addr})
	}
	return peers
}

// followerOf returns a member other than leader.
func followerOf(ms []*member, leader *member) *member {
	for _, m := range ms {
		if m != leader {
			return m
		}
	}
	return nil
}

func service(name, ip string) *fsm.Service {
	return &fsm.Service{Namespace: "default", Name: name, Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr(ip)}}
}

func commit(t testing.TB, m *member, cmds ...fsm.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.node.Commit(ctx, cmds); err != nil {
		t.Fatal(err)
	}
}

func hasService(m *member, name string) bool {
	return m.store != nil && m.store.View().Service(fsm.ServiceKey{Namespace: "default", Name: name}) != nil
}
