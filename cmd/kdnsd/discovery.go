package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/membership"
	"github.com/kdnsd/kdnsd/raftnode"
)

// discoveryOptions choose how peers find each other: a static --peers list,
// or the pods of the StatefulSet through the Kubernetes API.
type discoveryOptions struct {
	mode, namespace, selector, statefulSet string
	peerStatus                             string
	bootstrapExpect                        int
	voter                                  bool
	deadServerTimeout                      time.Duration
}

const (
	discoveryStatic     = "static"
	discoveryKubernetes = "kubernetes"
)

func (d *discoveryOptions) addFlags(f *pflag.FlagSet) {
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" {
		namespace = "kube-system"
	}
	f.StringVar(&d.mode, "discovery", discoveryStatic, "how peers are found: static (--peers) or kubernetes (the pods of the StatefulSet)")
	f.StringVar(&d.namespace, "namespace", namespace, "namespace of kdnsd's pods, with --discovery=kubernetes (default: $POD_NAMESPACE)")
	f.StringVar(&d.selector, "selector", "app.kubernetes.io/name=kdnsd", "label selector of kdnsd's pods, with --discovery=kubernetes")
	f.StringVar(&d.statefulSet, "statefulset", "", "name of the voters' StatefulSet (default: --id without its -<ordinal>)")
	f.IntVar(&d.bootstrapExpect, "bootstrap-expect", membership.DefaultBootstrapExpect, "voters a new cluster waits for before it bootstraps, with --discovery=kubernetes")
	f.StringVar(&d.peerStatus, "peer-status", "", "with --peers: id=host:port,… of each peer's --http-addr, asked before bootstrapping and by the leader (default: the peer's Raft host and this replica's --http-addr port)")
	f.BoolVar(&d.voter, "voter", true, "take part in quorum; false makes a read replica that receives the log and serves DNS")
	f.DurationVar(&d.deadServerTimeout, "dead-server-timeout", membership.DefaultDeadServerTimeout, "how long a server the StatefulSet no longer wants may be unreachable before the leader removes it")
}

var ordinalSuffix = regexp.MustCompile(`-[0-9]+$`)

func (d *discoveryOptions) validate(o *serveOptions) error {
	switch d.mode {
	case discoveryStatic:
		if !d.voter && o.peers != "" {
			return errors.New("--voter=false: a read replica is added by the leader; give it no --peers")
		}
		if d.peerStatus != "" && o.peers == "" {
			return errors.New("--peer-status is for --peers")
		}
		_, err := d.staticStatus(o)
		return err
	case discoveryKubernetes:
	default:
		return fmt.Errorf("--discovery %q: want static or kubernetes", d.mode)
	}
	if o.peers != "" {
		return errors.New("--peers is for --discovery=static")
	}
	if d.bootstrapExpect < 1 {
		return fmt.Errorf("--bootstrap-expect %d: want at least 1", d.bootstrapExpect)
	}
	if d.statefulSet == "" {
		if !ordinalSuffix.MatchString(o.id) {
			return fmt.Errorf("--statefulset is required: --id %q is not <statefulset>-<ordinal>", o.id)
		}
		d.statefulSet = ordinalSuffix.ReplaceAllString(o.id, "")
	}
	if d.namespace == "" {
		return errors.New("--namespace is required with --discovery=kubernetes")
	}
	if _, err := labels.Parse(d.selector); err != nil || d.selector == "" {
		return fmt.Errorf("--selector %q: want a label selector: %v", d.selector, err)
	}
	if d.deadServerTimeout < 0 {
		return fmt.Errorf("--dead-server-timeout %s: want zero or more", d.deadServerTimeout)
	}
	for name, addr := range map[string]string{"--raft-advertise": mustAdvertise(o), "--http-addr": o.httpAddr} {
		if p, err := port(addr); err != nil || p == 0 {
			return fmt.Errorf("%s %q: peers need a fixed port", name, addr)
		}
	}
	return nil
}

// mustAdvertise is o.advertise() after validate has checked it.
func mustAdvertise(o *serveOptions) string {
	addr, _ := o.advertise()
	return addr
}

// staticStatus is where each static peer's /status is.
func (d *discoveryOptions) staticStatus(o *serveOptions) (map[string]string, error) {
	peers, _ := raftnode.ParsePeers(o.peers) // checked by validate
	out := map[string]string{}
	if d.peerStatus != "" {
		given, err := raftnode.ParsePeers(d.peerStatus)
		if err != nil {
			return nil, fmt.Errorf("--peer-status: %w", err)
		}
		for _, p := range given {
			out[p.ID] = p.Addr
		}
	}
	httpPort, err := port(o.httpAddr)
	if err != nil || httpPort == 0 {
		if len(peers) > len(out) {
			return nil, fmt.Errorf("--http-addr %q: give --peer-status, or a fixed port that every peer uses", o.httpAddr)
		}
	}
	for _, p := range peers {
		if _, ok := out[p.ID]; !ok {
			host, _, _ := net.SplitHostPort(p.Addr)
			out[p.ID] = net.JoinHostPort(host, strconv.Itoa(httpPort))
		}
	}
	return out, nil
}

// static returns the membership of --peers, or nil without them.
func (d *discoveryOptions) static(o *serveOptions, log *slog.Logger) (*membership.Static, error) {
	peers, _ := raftnode.ParsePeers(o.peers) // checked by validate
	if d.mode != discoveryStatic || len(peers) == 0 {
		return nil, nil
	}
	status, err := d.staticStatus(o)
	if err != nil {
		return nil, err
	}
	return membership.NewStatic(o.id, peers, status, log.With("component", "membership"))
}

// membership returns the Kubernetes discovery, or nil for static peers.
func (d *discoveryOptions) membership(o *serveOptions, client kubeclient.Client, log *slog.Logger) (*membership.Membership, error) {
	if d.mode != discoveryKubernetes {
		return nil, nil
	}
	// Peers dial the advertised port, which may differ from the one
	// listened on (behind a port mapping).
	raftPort, err := port(mustAdvertise(o))
	if err != nil {
		return nil, fmt.Errorf("--raft-advertise: %w", err)
	}
	statusPort, err := port(o.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	return membership.New(membership.Config{
		Client: client, Namespace: d.namespace, Selector: d.selector, StatefulSet: d.statefulSet,
		RaftPort: raftPort, StatusPort: statusPort, BootstrapExpect: d.bootstrapExpect,
		DeadServerTimeout: d.deadServerTimeout, Self: o.id, Voter: d.voter,
		Logger: log,
	})
}

func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}
