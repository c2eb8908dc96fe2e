package raftnode

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/raftauth"
)

// streamLayer carries Raft over plain TCP, or over mutual TLS when auth is
// set. Every accepted connection is a guardedConn: each request is checked
// (the sender's claim against its certificate, votes against this replica's
// admission) before raft reads it.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	auth      *raftauth.Plane
	tls       *tls.Config
	check     rpcCheck
	// dialledID says which server an address was resolved for, so that a
	// dialled peer must prove it is that server.
	dialledID func(addr string) (string, bool)
}

func newStreamLayer(bind string, advertise net.Addr, auth *raftauth.Plane, check rpcCheck, dialledID func(string) (string, bool)) (*streamLayer, error) {
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &streamLayer{Listener: l, advertise: advertise, auth: auth, check: check, dialledID: dialledID}
	if auth != nil {
		s.tls = auth.Config()
		s.Listener = tls.NewListener(l, s.tls)
	}
	return s, nil
}

func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGuardedConn(c, s.check), nil
}

// Addr is the address peers dial, not the one listened on.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(address))
	}
	c, err := tls.DialWithDialer(d, "tcp", string(address), s.tls)
	if err != nil {
		return nil, err
	}
	if id, ok := s.dialledID(string(address)); ok {
		if err := s.auth.CheckClaim(c.ConnectionState().PeerCertificates[0], id, string(address)); err != nil {
			c.Close()
			return nil, fmt.Errorf("dialled %s for server %s: %w", address, id, err)
		}
	}
	return c, nil
}

// addressProvider lets the transport dial a server at the address discovery
// knows now (a rescheduled pod's new IP) before the one in the Raft
// configuration, which it falls back to. It remembers which server each
// address was given for.
type addressProvider struct {
	discovered func(id string) (string, bool)
	configured func(id string) (string, bool)
	given      sync.Map // address → server ID
}

func (p *addressProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	addr, ok := "", false
	if p.discovered != nil {
		addr, ok = p.discovered(string(id))
	}
	if !ok {
		addr, ok = p.configured(string(id))
	}
	if !ok {
		return "", fmt.Errorf("no address known for server %q", id)
	}
	p.given.Store(addr, string(id))
	return raft.ServerAddress(addr), nil
}

func (p *addressProvider) idFor(addr string) (string, bool) {
	id, ok := p.given.Load(addr)
	if !ok {
		return "", false
	}
	return id.(string), true
}

// errNotAdmitted refuses a vote or an election while this replica is not
// admitted. Its text must not contain "unexpected command": raft takes such
// an error to a pre-vote as a granted vote from an old peer.
var errNotAdmitted = errors.New("raft: this replica is not admitted to vote yet")

// voteGuard keeps a replica that is not admitted out of elections: its
// (pre-)vote requests fail before they leave, so it cannot campaign (and
// with pre-vote, its term does not grow while it tries).
type voteGuard struct {
	*raft.NetworkTransport
	mayVote func() bool
}

func (t voteGuard) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if !t.mayVote() {
		return errNotAdmitted
	}
	return t.NetworkTransport.RequestVote(id, target, args, resp)
}

func (t voteGuard) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if !t.mayVote() {
		return errNotAdmitted
	}
	return t.NetworkTransport.RequestPreVote(id, target, args, resp)
}

// rpcTimeout is the transport's dial and I/O timeout: how long an RPC to a
// peer whose packets are dropped (partitioned, its host gone) waits.
const rpcTimeout = 10 * time.Second

// refusedRetry is how often awaitRestart dials a peer that refuses again.
const refusedRetry = 50 * time.Millisecond

// awaitRestart makes an AppendEntries to a peer that refuses connections
// (its host is up, its process is not: a replica restarting) dial again
// until the peer listens, for as long as a dial to a partitioned peer
// waits (rpcTimeout), instead of failing at once. hashicorp/raft backs off
// replication to a peer after every failed RPC, 10 ms doubling up to
// 10.24 s, and only a successful replication resets it (heartbeats do
// not): a follower down for 15 s that refused every dial had run up ten
// failures, and the leader then slept for seconds before sending it what
// it missed, while it answered from its old state. Waiting for the peer
// counts one failure per rpcTimeout, as a partition does, and the follower
// gets the log within refusedRetry of listening again. The request never
// reached the peer, so sending it again is safe.
type awaitRestart struct {
	voteGuard
	window, retry time.Duration
	// stop ends every wait: a replica shutting down fails its RPCs at once,
	// as before (its leadership transfer must not wait on a dead peer).
	stop <-chan struct{}
	// member reports whether a server is still in the configuration: one
	// removed (scaled down) is not waited for.
	member func(raft.ServerID) bool
}

func (t awaitRestart) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	deadline := time.Now().Add(t.window)
	for {
		err := t.voteGuard.AppendEntries(id, target, args, resp)
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().Add(t.retry).After(deadline) || !t.member(id) {
			return err
		}
		select {
		case <-t.stop:
			return err
		case <-time.After(t.retry):
		}
	}
}

// transport is the Raft transport of a Node.
func (n *Node) newTransport(bind string, advertise net.Addr, auth *raftauth.Plane, addrs *addressProvider, log hclog.Logger) (awaitRestart, *raft.NetworkTransport, error) {
	stream, err := newStreamLayer(bind, advertise, auth, n.checkRPC, addrs.idFor)
	if err != nil {
		return awaitRestart{}, nil, err
	}
	nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: rpcTimeout, Logger: log, ServerAddressProvider: addrs,
	})
	return awaitRestart{voteGuard: voteGuard{NetworkTransport: nt, mayVote: n.mayVote}, window: rpcTimeout, retry: refusedRetry, stop: n.stop,
		member: func(id raft.ServerID) bool { _, ok := n.configuredAddr(string(id)); return ok }}, nt, nil
}

// checkRPC is every accepted request's check (see guardedConn).
func (n *Node) checkRPC(typ byte, env *rpcEnvelope, peer *x509.Certificate) error {
	id, addr := string(env.ID), string(env.Addr)
	if n.auth != nil {
		if peer == nil {
			return n.rejected.add(rejectIdentity, "?", errors.New("no certificate"), n.log)
		}
		if err := n.auth.CheckClaim(peer, id, addr); err != nil {
			return n.rejected.add(rejectIdentity, peer.Subject.CommonName+"/"+id, err, n.log)
		}
	}
	switch typ {
	case rpcRequestVote, rpcRequestPreVote, rpcTimeoutNow:
		if !n.mayVote() {
			return n.rejected.add(rejectNotAdmitted, id, fmt.Errorf("%s from %s: %w", rpcName(typ), id, errNotAdmitted), n.log)
		}
	}
	return nil
}
