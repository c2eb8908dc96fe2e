package raftnode

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftauth"
	"github.com/kdnsd/kdnsd/test/raftwire"
	"github.com/kdnsd/kdnsd/test/wait"
)

const testDomain = "kdnsd-peers.test.svc"

// newCA makes a CA with raftauth.InitCA, as `kdnsd certs init` does.
func newCA(t *testing.T) (cert, key string) {
	t.Helper()
	cert, key, err := raftauth.InitCA(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// plane issues a leaf for id at addr's IP from the CA, as a pod does.
func plane(t *testing.T, caCert, caKey, id, addr string) *raftauth.Plane {
	t.Helper()
	host, _, _ := net.SplitHostPort(addr)
	p, err := raftauth.NewIssuing(caCert, caKey, id, testDomain, []net.IP{net.ParseIP(host)}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTLSCluster starts n members over mutual TLS with leaves of one CA.
func newTLSCluster(t *testing.T, n int) (ms []*member, caCert, caKey string) {
	t.Helper()
	caCert, caKey = newCA(t)
	var peers []Peer
	for i := range n {
		m := &member{id: fmt.Sprintf("r%d", i), addr: freeAddr(t), dir: t.TempDir()}
		m.auth = plane(t, caCert, caKey, m.id, m.addr)
		peers = append(peers, Peer{ID: m.id, Addr: m.addr})
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.start(t, peers)
	}
	return ms, caCert, caKey
}

// TestMutualTLS: peers with leaves of the cluster CA form a cluster and
// replicate (snapshots included: the guard passes their raw bytes through);
// a peer with a leaf of another CA is never heard, and so never gets the log.
func TestMutualTLS(t *testing.T) {
	ms, _, _ := newTLSCluster(t, 3)
	leader := leaderOf(t, ms)
	commit(t, leader, fsm.UpsertService(service("over-tls", "10.96.0.50")))
	for _, m := range ms {
		wait.For(t, m.id+" to apply over TLS", 10*time.Second, func() bool { return hasService(m, "over-tls") })
	}

	otherCert, otherKey := newCA(t)
	intruder := &member{id: "intruder", addr: freeAddr(t), dir: t.TempDir()}
	intruder.auth = plane(t, otherCert, otherKey, intruder.id, intruder.addr)
	intruder.start(t, nil)
	ctx, cancel := contextWithTimeout(3 * time.Second)
	defer cancel()
	leader.node.AddServer(ctx, intruder.id, intruder.addr, false)
	commit(t, leader, fsm.UpsertService(service("secret", "10.96.0.51")))
	if wait.Poll(2*time.Second, func() bool { return hasService(intruder, "secret") }) {
		t.Fatal("a peer with a foreign certificate received the log")
	}
}

// forgedAppend is what an attacker sends a follower: a term far ahead and
// an upsert that repoints an existing service.
func forgedAppend(t *testing.T, victim *member, claimID, claimAddr string) *raft.AppendEntriesRequest {
	t.Helper()
	data, err := fsm.Encode([]fsm.Command{fsm.UpsertService(service("target", "10.96.66.66"))})
	if err != nil {
		t.Fatal(err)
	}
	st := victim.node.Status()
	last, _ := victim.logStore().LastIndex()
	var prev raft.Log
	if err := victim.logStore().GetLog(last, &prev); err != nil {
		t.Fatal(err)
	}
	return &raft.AppendEntriesRequest{
		RPCHeader:         raftwire.Header(claimID, claimAddr),
		Term:              st.Term + 100,
		PrevLogEntry:      last,
		PrevLogTerm:       prev.Term,
		Entries:           []*raft.Log{{Index: last + 1, Term: st.Term + 100, Type: raft.LogCommand, Data: data}},
		LeaderCommitIndex: last + 1,
	}
}

// sendRPC sends one request and reads raft's answer (an AppendEntries
// response: every request tried here is answered in that shape or not at
// all).
func sendRPC(conn net.Conn, typ byte, req any) error {
	var resp raft.AppendEntriesResponse
	return raftwire.Send(conn, typ, req, &resp)
}

// TestForgedRPCsRefused reproduces attacks on a follower of a TLS cluster
// with a service "target": each would have repointed it before the Raft
// plane was authenticated.
func TestForgedRPCsRefused(t *testing.T) {
	ms, caCert, caKey := newTLSCluster(t, 3)
	leader := leaderOf(t, ms)
	commit(t, leader, fsm.UpsertService(service("target", "10.96.0.60")))
	var victim *member
	for _, m := range ms {
		if m != leader {
			victim = m
		}
		wait.For(t, m.id+" to apply target", 10*time.Second, func() bool { return hasService(m, "target") })
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if ip := serviceIP(victim, "target"); ip != "10.96.0.60" {
			t.Fatalf("target now resolves to %s", ip)
		}
	}

	t.Run("plaintext AppendEntries", func(t *testing.T) {
		conn, err := net.Dial("tcp", victim.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := sendRPC(conn, rpcAppendEntries, forgedAppend(t, victim, leader.id, leader.addr)); err == nil {
			t.Fatal("a plaintext AppendEntries got an answer")
		}
		unchanged(t)
	})
	t.Run("plaintext RequestVote", func(t *testing.T) {
		conn, err := net.Dial("tcp", victim.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := &raft.RequestVoteRequest{RPCHeader: raftwire.Header("evil", "127.0.0.1:1"),
			Term: victim.node.Status().Term + 100, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40}
		if err := sendRPC(conn, rpcRequestVote, req); err == nil {
			t.Fatal("a plaintext RequestVote got an answer")
		}
	})
	for _, tc := range []struct {
		name, certID, claimID, claimAddr string
	}{
		// A certificate the CA signed, for a server that is not the one
		// whose ID the RPC claims.
		{"valid certificate for another server ID", "r9", leader.id, leader.addr},
		// The right ID, from an address the certificate does not name.
		{"claimed address not in the certificate", leader.id, leader.id, "127.0.0.99:7000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := victim.node.RejectedRPCs()[rejectIdentity]
			attacker := plane(t, caCert, caKey, tc.certID, "127.0.0.1:0")
			conn, err := tls.Dial("tcp", victim.addr, attacker.Config())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := sendRPC(conn, rpcAppendEntries, forgedAppend(t, victim, tc.claimID, tc.claimAddr)); err == nil {
				t.Fatal("the forged AppendEntries got an answer")
			}
			if after := victim.node.RejectedRPCs()[rejectIdentity]; after != before+1 {
				t.Fatalf("identity rejections %d → %d, want one more", before, after)
			}
			unchanged(t)
		})
	}
	// The control: the same forged request, claiming the ID and address its
	// certificate names, is heard by raft (and refused by it or not, as
	// Raft's rules say): what the guard stops is the impersonation.
	t.Run("control: matching claim reaches raft", func(t *testing.T) {
		attacker := plane(t, caCert, caKey, "r9", "127.0.0.1:0")
		conn, err := tls.Dial("tcp", victim.addr, attacker.Config())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		hb := &raft.AppendEntriesRequest{RPCHeader: raftwire.Header("r9", "127.0.0.1:1"), Term: 0}
		if err := sendRPC(conn, rpcAppendEntries, hb); err != nil {
			t.Fatalf("a well-formed request with a matching certificate was dropped: %v", err)
		}
	})
}

func serviceIP(m *member, name string) string {
	s := m.store.View().Service(fsm.ServiceKey{Namespace: "default", Name: name})
	if s == nil || len(s.ClusterIPs) == 0 {
		return ""
	}
	return s.ClusterIPs[0].String()
}

// logStore opens nothing: it is the member's own raft-boltdb store.
func (m *member) logStore() raft.LogStore { return m.node.logStore }

// TestDialledPeerMustBeTheServerAskedFor: a peer whose certificate names
// another server ID than the one its address was resolved for is hung up
// on, even though the CA signed it (an address taken over by another pod).
func TestDialledPeerMustBeTheServerAskedFor(t *testing.T) {
	caCert, caKey := newCA(t)
	addr := freeAddr(t)
	impostor := plane(t, caCert, caKey, "r2", addr)
	l, err := tls.Listen("tcp", addr, impostor.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dialler := plane(t, caCert, caKey, "r0", freeAddr(t))
	for _, tc := range []struct {
		askedFor string
		ok       bool
	}{{"r2", true}, {"r1", false}} {
		s := &streamLayer{auth: dialler, tls: dialler.Config(), dialledID: func(string) (string, bool) { return tc.askedFor, true }}
		c, err := s.Dial(raft.ServerAddress(addr), time.Second)
		if c != nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("dial for %s: %v, want ok=%v", tc.askedFor, err, tc.ok)
		}
	}
}
