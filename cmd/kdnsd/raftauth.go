package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/kdnsd/kdnsd/raftauth"
)

// raftAuthOptions say how the Raft port is authenticated: with a leaf this
// replica issues itself from a mounted CA (--raft-tls-ca + --raft-tls-ca-key,
// what the shipped manifest does), with certificate files (cert-manager), or
// not at all, which is allowed only on loopback or with --raft-insecure.
type raftAuthOptions struct {
	files        raftauth.Files
	caKey        string
	domain       string
	leafLifetime time.Duration
	insecure     bool
}

func (r *raftAuthOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&r.files.CA, "raft-tls-ca", "", "CA file (a bundle during a CA rotation) that every Raft peer's certificate must be signed by")
	f.StringVar(&r.caKey, "raft-tls-ca-key", "", "the CA's key: this replica issues itself a short-lived Raft certificate for its --id and advertised IP (see `kdnsd certs init`)")
	f.StringVar(&r.files.Cert, "raft-tls-cert", "", "Raft certificate file instead of issuing one (e.g. from cert-manager; reloaded when it changes); it must name <id>.<raft-tls-domain>")
	f.StringVar(&r.files.Key, "raft-tls-key", "", "key file of --raft-tls-cert")
	f.StringVar(&r.domain, "raft-tls-domain", raftauth.DefaultDomain, "a Raft peer's certificate names its server ID as the DNS name <id>.<this domain>")
	f.DurationVar(&r.leafLifetime, "raft-tls-lifetime", raftauth.DefaultLeafLifetime, "lifetime of the Raft certificate issued from --raft-tls-ca-key; a new one is issued after two thirds of it")
	f.BoolVar(&r.insecure, "raft-insecure", false, "allow plaintext, unauthenticated Raft on a non-loopback address: anyone who can reach the port can then rewrite cluster DNS")
}

// enabled reports whether Raft runs over mutual TLS.
func (r *raftAuthOptions) enabled() bool { return r.files != (raftauth.Files{}) || r.caKey != "" }

func (r *raftAuthOptions) validate(bind, advertise string) error {
	if r.domain == "" {
		return errors.New("--raft-tls-domain must not be empty")
	}
	if r.enabled() {
		if r.insecure {
			return errors.New("--raft-insecure together with --raft-tls-*: choose one")
		}
		if r.caKey != "" && (r.files.Cert != "" || r.files.Key != "") {
			return errors.New("--raft-tls-ca-key issues this replica's certificate: do not also give --raft-tls-cert/--raft-tls-key")
		}
		if r.caKey != "" && r.files.CA == "" {
			return errors.New("--raft-tls-ca-key needs --raft-tls-ca")
		}
		return nil
	}
	if r.insecure || (isLoopback(bind) && isLoopback(advertise)) {
		return nil
	}
	return fmt.Errorf("the Raft port (--raft-addr %s) is reachable from other hosts without authentication: "+
		"anyone who can reach it can rewrite what the cluster resolves. Give --raft-tls-ca and --raft-tls-ca-key "+
		"(`kdnsd certs init` makes them) or --raft-tls-cert/--raft-tls-key/--raft-tls-ca; --raft-insecure accepts the risk", bind)
}

// isLoopback reports whether host:port names a loopback IP.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plane returns the Raft plane's TLS for replica id advertised at
// advertise, or nil for plaintext.
func (r *raftAuthOptions) plane(id, advertise string, log *slog.Logger) (*raftauth.Plane, error) {
	if !r.enabled() {
		if r.insecure {
			log.Warn("RAFT IS PLAINTEXT AND UNAUTHENTICATED (--raft-insecure): anyone who can reach the Raft port can rewrite cluster DNS")
		}
		return nil, nil
	}
	if r.caKey != "" {
		host, _, _ := net.SplitHostPort(advertise) // checked by validate
		p, err := raftauth.NewIssuing(r.files.CA, r.caKey, id, r.domain, []net.IP{net.ParseIP(host)}, r.leafLifetime, log.With("component", "raft-tls"))
		if err != nil {
			return nil, fmt.Errorf("--raft-tls-ca/--raft-tls-ca-key: %w", err)
		}
		return p, nil
	}
	p, err := raftauth.NewFromFiles(r.files, id, r.domain, log.With("component", "raft-tls"))
	if err != nil {
		return nil, fmt.Errorf("--raft-tls-cert/--raft-tls-key/--raft-tls-ca: %w", err)
	}
	return p, nil
}
