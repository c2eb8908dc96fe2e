// Package dnswritertest records what a dns.Handler writes, for tests.
package dnswritertest

import (
	"net"
	"slices"
	"sync"

	"github.com/kdnsd/kdnsd/internal/dnswriter"
)

// The addresses a Recorder reports: a server on 127.0.0.1:53 and its client.
var (
	ServerUDP = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	ClientUDP = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	ServerTCP = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	ClientTCP = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
)

// Recorder is a dns.ResponseWriter that keeps a copy of every reply written
// to it, from any goroutine.
type Recorder struct {
	dnswriter.Writer
	mu      sync.Mutex
	replies [][]byte
}

// New returns a Recorder for a query that came over TCP, or else UDP.
func New(tcp bool) *Recorder {
	r := &Recorder{}
	r.Local, r.Remote = ServerUDP, ClientUDP
	if tcp {
		r.Local, r.Remote = ServerTCP, ClientTCP
	}
	r.Send = func(b []byte) (int, error) {
		r.mu.Lock()
		r.replies = append(r.replies, slices.Clone(b))
		r.mu.Unlock()
		return len(b), nil
	}
	return r
}

// Replies returns the replies written so far, packed, in order.
func (r *Recorder) Replies() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clip(r.replies)
}

// Reset forgets the replies written so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.replies = nil
	r.mu.Unlock()
}
