package raftnode

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// The RPC type byte that starts every request hashicorp/raft's
// NetworkTransport sends (net_transport.go; unexported there). The guard
// tests exchange real RPCs through a NetworkTransport, so a change of these
// numbers in a raft upgrade fails them.
const (
	rpcAppendEntries   byte = 0
	rpcRequestVote     byte = 1
	rpcInstallSnapshot byte = 2
	rpcTimeoutNow      byte = 3
	rpcRequestPreVote  byte = 4
)

func rpcName(t byte) string {
	switch t {
	case rpcAppendEntries:
		return "AppendEntries"
	case rpcRequestVote:
		return "RequestVote"
	case rpcInstallSnapshot:
		return "InstallSnapshot"
	case rpcTimeoutNow:
		return "TimeoutNow"
	case rpcRequestPreVote:
		return "RequestPreVote"
	}
	return fmt.Sprintf("rpc(%d)", t)
}

// rpcEnvelope is the part of every raft request the guard reads: the header
// (inlined by msgpack, as raft's requests embed it), the deprecated sender
// fields raft still falls back to, and a snapshot's size.
type rpcEnvelope struct {
	raft.RPCHeader
	Leader    []byte // AppendEntries, InstallSnapshot
	Candidate []byte // RequestVote
	Size      int64  // InstallSnapshot: raw bytes that follow the request
}

// rpcCheck decides whether a request may reach raft: typ is its RPC type,
// env what it claims, peer the certificate it arrived with (nil on a
// plaintext transport). A non-nil error drops the connection.
type rpcCheck func(typ byte, env *rpcEnvelope, peer *x509.Certificate) error

// guardedConn hands hashicorp/raft's NetworkTransport one request at a time,
// each only after check has accepted it: the transport's decoder never sees
// a byte of a request that was refused. It reads the type byte and the
// msgpack request itself, keeps the bytes, and replays them; an
// InstallSnapshot's raw data then passes through as it is.
type guardedConn struct {
	net.Conn
	r     *bufio.Reader
	check rpcCheck

	peer    *x509.Certificate
	pending []byte // an accepted request not yet read by raft
	raw     int64  // snapshot bytes still to pass through
	err     error
}

// handshakeTimeout bounds a TLS handshake on an accepted connection, so that
// a peer that connects and says nothing does not hold a goroutine forever.
const handshakeTimeout = 10 * time.Second

func newGuardedConn(c net.Conn, check rpcCheck) *guardedConn {
	return &guardedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), check: check}
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(c.pending) == 0 && c.raw == 0 {
		if err := c.next(); err != nil {
			c.err = err
			c.Conn.Close()
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if int64(len(p)) > c.raw {
		p = p[:c.raw]
	}
	n, err := c.r.Read(p)
	c.raw -= int64(n)
	return n, err
}

// next reads and checks the next request.
func (c *guardedConn) next() error {
	if tc, ok := c.Conn.(*tls.Conn); ok && c.peer == nil {
		tc.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.Handshake(); err != nil {
			return err
		}
		tc.SetDeadline(time.Time{})
		c.peer = tc.ConnectionState().PeerCertificates[0]
	}
	typ, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	var req bytes.Buffer
	req.WriteByte(typ)
	var env rpcEnvelope
	if err := codec.NewDecoder(io.TeeReader(c.r, &req), &codec.MsgpackHandle{}).Decode(&env); err != nil {
		return fmt.Errorf("raft %s request: %w", rpcName(typ), err)
	}
	if err := env.consistent(); err != nil {
		return err
	}
	if err := c.check(typ, &env, c.peer); err != nil {
		return err
	}
	if typ == rpcInstallSnapshot {
		if env.Size < 0 {
			return errors.New("raft InstallSnapshot request with a negative size")
		}
		c.raw = env.Size
	}
	c.pending = req.Bytes()
	return nil
}

// consistent refuses a request whose deprecated sender field (which raft
// falls back to) differs from the header's: the header is what is checked.
func (e *rpcEnvelope) consistent() error {
	for _, old := range [][]byte{e.Leader, e.Candidate} {
		if len(old) > 0 && !bytes.Equal(old, e.Addr) {
			return fmt.Errorf("raft request names %q as sender address and %q in its header", old, e.Addr)
		}
	}
	return nil
}
