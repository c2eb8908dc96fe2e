//go:build !linux

package dnsserver

import (
	"net"
	"syscall"
)

// reusePort is whether several UDP sockets can share an address: only on
// Linux here, where the fast path is tuned.
const reusePort = false

// udpControl sets no option: no SO_REUSEPORT, no packet information (the
// answers of a socket of the unspecified address leave from the address
// the routing table picks).
func udpControl(bool) func(network, address string, c syscall.RawConn) error {
	return nil
}

func replyOOB(dst, _ []byte) []byte { return dst[:0] }

// serveBatched is serve: no recvmmsg here.
func (s *udpServer) serveBatched(c *net.UDPConn, cnt *block) error { return s.serve(c, cnt) }
