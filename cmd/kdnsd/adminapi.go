package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/membership"
	"github.com/kdnsd/kdnsd/raftnode"
	"github.com/kdnsd/kdnsd/resolver"
)

// adminOptions configure the admin API that `kdnsd peers`, `status` and
// `snapshot` talk to: its network address and the unix socket.
type adminOptions struct{ addr, tokenFile, tlsCert, tlsKey, clientCA, peerCA, socket string }

// defaultDataDir is --data-dir of serve and of the client commands.
const defaultDataDir = "/var/lib/kdnsd"

// defaultAdminSocket is --admin-socket of serve and of the client commands,
// relative to --data-dir. The manifest sets KDNSD_DATA_DIR, which kubectl
// exec inherits, so the CLI in the pod finds the socket with no flags.
const defaultAdminSocket = "admin.sock"

// adminSocketPath is where the admin socket is: socket, relative to dataDir
// unless absolute; "" when socket is "" (off).
func adminSocketPath(dataDir, socket string) string {
	if socket == "" || filepath.IsAbs(socket) {
		return socket
	}
	return filepath.Join(dataDir, socket)
}

func (a adminOptions) config(dataDir string) admin.Config {
	return admin.Config{Addr: a.addr, Socket: adminSocketPath(dataDir, a.socket),
		TokenFile: a.tokenFile, TLSCert: a.tlsCert, TLSKey: a.tlsKey, ClientCA: a.clientCA, PeerCA: a.peerCA}
}

func (a *adminOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&a.addr, "admin-addr", "", "network address of the admin API used by kdnsd peers/status/snapshot, off when empty; a non-loopback address needs --admin-tls-cert/--admin-tls-key and --admin-token-file and/or --admin-client-ca")
	f.StringVar(&a.tokenFile, "admin-token-file", "", "file of bearer tokens the admin API accepts, one per line, the first also sent to peers (read again when it changes)")
	f.StringVar(&a.tlsCert, "admin-tls-cert", "", "certificate file of the admin API, also presented to peers as client certificate (reloaded when it changes)")
	f.StringVar(&a.tlsKey, "admin-tls-key", "", "key file of --admin-tls-cert")
	f.StringVar(&a.clientCA, "admin-client-ca", "", "CA file that every admin client certificate must be signed by (mutual TLS); also verifies peers' admin certificates")
	f.StringVar(&a.peerCA, "admin-peer-ca", "", "CA file that verifies peers' admin certificates (default: --admin-client-ca)")
	f.StringVar(&a.socket, "admin-socket", defaultAdminSocket, "unix socket (mode 0600) of the admin API for this user's processes, relative to --data-dir; off when empty")
}

func (a adminOptions) validate(dataDir string) error {
	network := a
	network.socket = ""
	switch {
	case a.addr == "" && network != (adminOptions{}):
		return errors.New("--admin-* flags given without --admin-addr")
	case a.addr == "" && a.socket == "":
		return nil
	}
	if err := a.config(dataDir).Validate(); err != nil {
		if a.addr == "" {
			return fmt.Errorf("--admin-socket %s: %w", a.socket, err)
		}
		return fmt.Errorf("--admin-addr %s: %w", a.addr, err)
	}
	return nil
}

// server returns the admin API server, or nil when it is off.
func (a adminOptions) server(dataDir string, node *raftnode.Node, store *fsm.Store, res *resolver.Resolver, watcherState func() string, mem *membership.Membership, flags *fsm.DNSConfig, log *slog.Logger) (*admin.Server, error) {
	cfg := a.config(dataDir)
	if cfg.Addr == "" && cfg.Socket == "" {
		return nil, nil
	}
	cfg.Node, cfg.Views, cfg.Logger = node, store, log.With("component", "admin")
	cfg.ServedIndex = res.AppliedIndex
	cfg.WatcherState = watcherState
	cfg.FlagDNSConfig = flags
	if a.addr == "" {
		return admin.NewServer(cfg)
	}
	samePort, err := admin.SamePort(a.addr)
	if err != nil {
		return nil, err
	}
	// Every replica serves the admin API on the same port: a peer's admin
	// address is its current IP (from discovery, else its Raft address) and
	// that port.
	cfg.PeerAdminAddr = func(id, raftAddr string) string {
		if mem != nil {
			if addr, ok := mem.Addr(id); ok {
				raftAddr = addr
			}
		}
		return samePort(id, raftAddr)
	}
	return admin.NewServer(cfg)
}
