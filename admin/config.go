package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"

	"github.com/kdnsd/kdnsd/internal/filewatch"
)

// Node is what the admin API needs of this replica's Raft member; a
// *raftnode.Node is one.
type Node interface {
	Status() raftnode.Status
	Servers() ([]raftnode.ServerInfo, error)
	Leader() (id, raftAddr string)
	IsLeader() bool
	AddServer(ctx context.Context, id, addr string, voter bool) error
	RemoveServer(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) (leader string, err error)
	RestoreCluster(ctx context.Context, snapshot io.Reader) error
}

var _ Node = (*raftnode.Node)(nil)

// Views gives the current record set; an *fsm.Store is one.
type Views interface {
	View() *fsm.View
}

// Config configures a Server.
type Config struct {
	// Addr is host:port to listen on over TCP; "" for none. See the
	// package documentation for what a non-loopback address requires.
	Addr string
	// Socket is the path of a unix socket to listen on as well (or alone);
	// "" for none. See the package documentation.
	Socket string
	// TLSCert and TLSKey are the PEM files of the serving certificate, also
	// presented as client certificate to peers. Both or neither.
	TLSCert, TLSKey string
	// ClientCA, when set, requires every request to present a client
	// certificate signed by a CA in this PEM file.
	ClientCA string
	// TokenFile, when set, requires every request to carry one of the
	// tokens in this file as "Authorization: Bearer <token>".
	TokenFile string
	// PeerCA is the PEM file of the CA that signs the other replicas'
	// serving certificates; ClientCA when empty.
	PeerCA string

	Node  Node
	Views Views
	// WatcherState describes the Kubernetes watcher; optional.
	WatcherState func() string
	// FlagDNSConfig is the DNS configuration the replica's flags give,
	// in force where the committed one sets nothing (GET /v1/config);
	// optional.
	FlagDNSConfig *fsm.DNSConfig
	// ServedIndex is the Raft index of the records DNS answers from; the
	// View's index when nil.
	ServedIndex func() uint64
	// PeerAdminAddr gives another replica's admin host:port from its Raft
	// ID and address (see SamePort); "" when unknown. Without it no request
	// is forwarded and GET /v1/peers cannot ask the other peers.
	PeerAdminAddr func(id, raftAddr string) string
	Logger        *slog.Logger

	// PeerTimeout bounds each status request to a peer; 2s when zero.
	PeerTimeout time.Duration
	// MaxSnapshotBytes bounds a snapshot to restore; 256 MiB when zero.
	MaxSnapshotBytes int64
}

// Validate checks Addr, Socket and the security settings and reads every file once;
// it does not look at Node, Views or the callbacks. NewServer calls it.
func (c Config) Validate() error {
	_, err := c.security(slog.New(slog.DiscardHandler))
	return err
}

// security holds the parsed security settings.
type security struct {
	cert     *filewatch.Value[*tls.Certificate]
	clientCA *filewatch.Value[*x509.CertPool]
	peerCA   *filewatch.Value[*x509.CertPool]
	tokens   *filewatch.Value[[]string]
}

func (c *Config) security(log *slog.Logger) (*security, error) {
	if c.Socket != "" && len(c.Socket) > maxSocketPath {
		return nil, fmt.Errorf("admin socket %s: a unix socket path is at most %d bytes; choose a shorter one", c.Socket, maxSocketPath)
	}
	if c.Addr == "" {
		switch {
		case c.Socket == "":
			return nil, errors.New("the admin API needs an address, a unix socket or both")
		case c.TLSCert != "" || c.TLSKey != "" || c.ClientCA != "" || c.TokenFile != "" || c.PeerCA != "":
			return nil, errors.New("admin TLS, token and CA files are for the admin address; the unix socket is authenticated by its file permission")
		}
		return &security{}, nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", c.Addr, err)
	}
	loopback := IsLoopback(host)
	var s security
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("admin TLS needs both a certificate and a key file")
	}
	if c.TLSCert != "" {
		if s.cert, err = filewatch.New("admin TLS certificate", log, filewatch.KeyPair("admin TLS", c.TLSCert, c.TLSKey), c.TLSCert, c.TLSKey); err != nil {
			return nil, err
		}
	}
	if c.ClientCA != "" {
		if s.cert == nil {
			return nil, errors.New("an admin client CA needs HTTPS: set the admin TLS certificate and key")
		}
		if s.clientCA, err = filewatch.New("admin client CA", log, filewatch.CAPool("admin client", c.ClientCA), c.ClientCA); err != nil {
			return nil, err
		}
	}
	switch {
	case c.PeerCA != "":
		if s.cert == nil {
			return nil, errors.New("an admin peer CA needs HTTPS: set the admin TLS certificate and key")
		}
		if s.peerCA, err = filewatch.New("admin peer CA", log, filewatch.CAPool("admin peer", c.PeerCA), c.PeerCA); err != nil {
			return nil, err
		}
	case s.clientCA != nil:
		s.peerCA = s.clientCA
	}
	if c.TokenFile != "" {
		if s.tokens, err = filewatch.New("admin token file", log, loadTokens(c.TokenFile), c.TokenFile); err != nil {
			return nil, err
		}
	}
	if !loopback {
		if s.cert == nil {
			return nil, fmt.Errorf("refusing to serve the admin API on %s over plain HTTP: it is not a loopback address; set the admin TLS certificate and key", c.Addr)
		}
		if s.tokens == nil && s.clientCA == nil {
			return nil, fmt.Errorf("refusing to serve the admin API on %s without authentication: it is not a loopback address; set an admin token file and/or an admin client CA", c.Addr)
		}
	}
	return &s, nil
}

// IsLoopback reports whether host (from host:port) names only the loopback
// interface: "localhost", or an address in 127.0.0.0/8 or ::1. An empty host
// (every interface) is not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// SamePort returns a PeerAdminAddr for replicas that all serve the admin API
// on the port of adminAddr, as pods of a StatefulSet do: a peer's admin
// address is the host of its Raft address with that port.
func SamePort(adminAddr string) (func(id, raftAddr string) string, error) {
	_, port, err := net.SplitHostPort(adminAddr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", adminAddr, err)
	}
	return func(_, raftAddr string) string {
		host, _, err := net.SplitHostPort(raftAddr)
		if err != nil || host == "" {
			return ""
		}
		return net.JoinHostPort(host, port)
	}, nil
}
