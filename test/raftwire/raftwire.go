// Package raftwire speaks hashicorp/raft's NetworkTransport protocol by hand,
// for tests that play an attacker on the Raft port: one request, framed as
// raft frames it (a type byte, then msgpack), and its answer.
package raftwire

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// Request types, as raft's net_transport.go numbers them.
const (
	AppendEntries byte = 0
	RequestVote   byte = 1
)

// Send writes req as an RPC of type typ on conn and decodes the answer into
// resp. An error means the connection was refused, dropped or timed out, or
// the peer answered with an error.
func Send(conn net.Conn, typ byte, req, resp any) error {
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	w := bufio.NewWriter(conn)
	w.WriteByte(typ)
	if err := codec.NewEncoder(w, &codec.MsgpackHandle{}).Encode(req); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	dec := codec.NewDecoder(bufio.NewReader(conn), &codec.MsgpackHandle{})
	var rpcErr string
	if err := dec.Decode(&rpcErr); err != nil {
		return err
	}
	if rpcErr != "" {
		return errors.New(rpcErr)
	}
	return dec.Decode(resp)
}

// Header is the RPC header of a request that claims to come from server id
// at addr.
func Header(id, addr string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(addr)}
}
