package raftnode

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// streamLayer carries Raft over plain TCP, or over mutual TLS when tls is
// set: a peer without a client certificate signed by the CA fails the
// handshake and is never heard.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config
}

func newStreamLayer(bind string, advertise net.Addr, tlsConfig *tls.Config) (*streamLayer, error) {
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	return &streamLayer{Listener: l, advertise: advertise, tls: tlsConfig}, nil
}

// Addr is the address peers dial, not the one listened on.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls != nil {
		return tls.DialWithDialer(d, "tcp", string(address), s.tls)
	}
	return d.Dial("tcp", string(address))
}

// addressProvider lets the transport dial a server at the address discovery
// knows now (a rescheduled pod's new IP) before the one in the Raft
// configuration, which it falls back to.
type addressProvider struct {
	discovered func(id string) (string, bool)
	configured func(id string) (string, bool)
}

func (p addressProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if p.discovered != nil {
		if addr, ok := p.discovered(string(id)); ok {
			return raft.ServerAddress(addr), nil
		}
	}
	if addr, ok := p.configured(string(id)); ok {
		return raft.ServerAddress(addr), nil
	}
	return "", fmt.Errorf("no address known for server %q", id)
}

func newTransport(bind string, advertise net.Addr, tlsConfig *tls.Config, addrs addressProvider, log hclog.Logger) (*raft.NetworkTransport, error) {
	stream, err := newStreamLayer(bind, advertise, tlsConfig)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: log, ServerAddressProvider: addrs,
	}), nil
}
