package raftnode

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/test/wait"
)

// countingStream dials plain TCP and counts the dials.
type countingStream struct {
	net.Listener
	dials atomic.Int32
}

func (s *countingStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	s.dials.Add(1)
	return net.DialTimeout("tcp", string(addr), timeout)
}

// TestAwaitRestart: an AppendEntries to a peer whose port refuses is dialled
// again until the peer listens (within the window), fails with the refusal
// once the window is over, and fails at once when the replica is stopping.
func TestAwaitRestart(t *testing.T) {
	cases := []struct {
		name    string
		window  time.Duration
		stopped bool
		removed bool // the peer is no longer in the configuration
		listen  bool // the peer starts listening after two refused dials
		wantErr bool
	}{
		{name: "peer comes back within the window", window: time.Hour, listen: true},
		{name: "peer stays down", window: 300 * time.Millisecond, wantErr: true},
		{name: "replica stopping", window: time.Hour, stopped: true, wantErr: true},
		{name: "peer removed", window: time.Hour, removed: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			stream := &countingStream{Listener: ln}
			nt := raft.NewNetworkTransport(stream, 1, time.Second, io.Discard)
			defer nt.Close()
			peer := freeAddr(t) // nothing listens there: dials are refused
			stop := make(chan struct{})
			if tc.stopped {
				close(stop)
			}
			tr := awaitRestart{voteGuard: voteGuard{NetworkTransport: nt}, window: tc.window, retry: 10 * time.Millisecond, stop: stop,
				member: func(raft.ServerID) bool { return !tc.removed }}

			type result struct {
				resp raft.AppendEntriesResponse
				err  error
			}
			done := make(chan result, 1)
			go func() {
				var r result
				r.err = tr.AppendEntries("peer", raft.ServerAddress(peer), &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("me")}, Term: 7}, &r.resp)
				done <- r
			}()
			if tc.listen {
				wait.For(t, "two refused dials", 10*time.Second, func() bool { return stream.dials.Load() >= 2 })
				server, err := raft.NewTCPTransport(peer, nil, 1, time.Second, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				defer server.Close()
				go func() {
					rpc := <-server.Consumer()
					rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
				}()
			}
			// A test that fails leaves the request waiting: bound it.
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatal("AppendEntries did not return")
			}
			if tc.wantErr {
				if !errors.Is(r.err, syscall.ECONNREFUSED) {
					t.Fatalf("err = %v, want the refusal", r.err)
				}
				if (tc.stopped || tc.removed) && stream.dials.Load() != 1 {
					t.Fatalf("dialled %d times, want 1", stream.dials.Load())
				}
				return
			}
			if r.err != nil || !r.resp.Success || r.resp.Term != 7 {
				t.Fatalf("AppendEntries = %+v, %v; want the peer's answer", r.resp, r.err)
			}
		})
	}
}
