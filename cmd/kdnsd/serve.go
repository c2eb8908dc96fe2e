package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/dnsconfig"
	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/forward"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/membership"
	"github.com/kdnsd/kdnsd/raftnode"
	"github.com/kdnsd/kdnsd/resolver"
	"github.com/kdnsd/kdnsd/watcher"
)

type serveOptions struct {
	id, raftAddr, raftAdvertise, peers, dataDir string
	dnsAddr, httpAddr, kubeconfig, zone         string
	ttl                                         uint32
	logFormat, logLevel, raftLogLevel           string
	raftAuth                                    raftAuthOptions
	upstreams, stubDomains                      []string
	resolvConf                                  string
	cacheSize, maxInFlight                      int
	serveStale, lameduck                        time.Duration
	nsAddrs                                     []net.IP
	podMode                                     string
	configMap                                   string
	discovery                                   discoveryOptions
	adminAPI                                    adminOptions
}

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a kdnsd replica: Raft peer, DNS server and (while leading) API watcher",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The first signal starts a graceful shutdown; a second one
			// ends the process at once.
			go func() {
				<-ctx.Done()
				stop()
			}()
			return serve(ctx, o)
		},
	}
	f := cmd.Flags()
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	f.StringVar(&o.id, "id", id, "Raft server ID of this replica: the pod name in a StatefulSet (default: $POD_NAME, else the hostname)")
	f.StringVar(&o.raftAddr, "raft-addr", "0.0.0.0:7000", "address the Raft transport listens on")
	f.StringVar(&o.raftAdvertise, "raft-advertise", "", "address peers dial for Raft (default: --raft-addr)")
	f.StringVar(&o.peers, "peers", "", "static bootstrap configuration: id=host:port,… including this replica")
	o.discovery.addFlags(f)
	o.adminAPI.addFlags(f)
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory for the record store and Raft state")
	f.StringVar(&o.dnsAddr, "dns-addr", ":53", "address DNS is served on, UDP and TCP")
	f.StringVar(&o.httpAddr, "http-addr", ":8080", "address of /healthz, /readyz, /metrics and /status")
	f.DurationVar(&o.lameduck, "lameduck", 5*time.Second, "on SIGTERM, keep answering DNS this long while /readyz fails, so that Services stop sending queries here before the process stops")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
	f.StringVar(&o.zone, "zone", "cluster.local.", "cluster domain")
	f.Uint32Var(&o.ttl, "ttl", 30, "TTL of cluster records, in seconds")
	f.IPSliceVar(&o.nsAddrs, "ns-addr", nil, "addresses of ns.dns.<zone>, the name server in the zone's NS record: kdnsd's own Service IPs (default: the cluster IPs of kube-system/kube-dns)")
	f.StringVar(&o.podMode, "pod-mode", resolver.PodInsecure, "pod records <a-b-c-d>.<ns>.pod.<zone>: insecure, verified or disabled")
	f.StringVar(&o.configMap, "config-map", "kube-system/kdnsd", "namespace/name of the ConfigMap whose DNS configuration overrides these flags on every replica (see package dnsconfig); empty: none")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.raftLogLevel, "raft-log-level", "warn", "log level of the Raft library")
	f.StringSliceVar(&o.upstreams, "upstream", nil, "upstream DNS servers for names outside the cluster, ip[:port],… (default: the nameservers of --resolv-conf)")
	f.StringVar(&o.resolvConf, "resolv-conf", forward.DefaultResolvConf, "resolv.conf whose nameservers are the default upstreams")
	f.StringArrayVar(&o.stubDomains, "stub-domain", nil, "domain=ip[:port][;ip[:port]…]: forward that domain to its own servers (repeatable)")
	f.IntVar(&o.cacheSize, "cache-size", forward.DefaultCacheSize, "answers from upstreams kept in the cache (negative: no cache)")
	f.IntVar(&o.maxInFlight, "max-inflight", forward.DefaultMaxInFlight, "upstream queries in flight at most; more are answered SERVFAIL (or stale)")
	f.DurationVar(&o.serveStale, "serve-stale", forward.DefaultServeStale, "how long past expiry a cached answer is served when every upstream fails (negative: never)")
	o.raftAuth.addFlags(f)
	documentEnv(f)
	return cmd
}

func (o *serveOptions) validate() error {
	if o.id == "" {
		return errors.New("--id is required (the hostname was empty)")
	}
	for name, addr := range map[string]string{"--raft-addr": o.raftAddr, "--dns-addr": o.dnsAddr, "--http-addr": o.httpAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: %w", name, addr, err)
		}
	}
	if o.dataDir == "" {
		return errors.New("--data-dir is required")
	}
	if o.lameduck < 0 {
		return fmt.Errorf("--lameduck %s: want zero or more", o.lameduck)
	}
	peers, err := raftnode.ParsePeers(o.peers)
	if err != nil {
		return fmt.Errorf("--peers: %w", err)
	}
	if len(peers) > 0 && !slices.ContainsFunc(peers, func(p raftnode.Peer) bool { return p.ID == o.id }) {
		return fmt.Errorf("--peers does not name this replica's --id %q", o.id)
	}
	advertise, err := o.advertise()
	if err != nil {
		return err
	}
	if hclog.LevelFromString(o.raftLogLevel) == hclog.NoLevel {
		return fmt.Errorf("--raft-log-level %q: want trace, debug, info, warn or error", o.raftLogLevel)
	}
	if err := o.discovery.validate(o); err != nil {
		return err
	}
	if err := o.adminAPI.validate(o.dataDir); err != nil {
		return err
	}
	switch o.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if _, _, err := o.configMapName(); err != nil {
		return err
	}
	flags, err := o.flagConfig()
	if err != nil {
		return err
	}
	if _, err := o.forwarder(nil, flags); err != nil {
		return err
	}
	if _, err := resolver.New(o.resolverConfig(nil, nil)); err != nil {
		return fmt.Errorf("--zone, --pod-mode: %w", err)
	}
	if err := o.raftAuth.validate(o.raftAddr, advertise); err != nil {
		return err
	}
	if _, err := o.raftAuth.plane(o.id, advertise, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	return nil
}

// advertise is the address peers dial for Raft: --raft-advertise, or
// --raft-addr when it names an IP peers can reach.
func (o *serveOptions) advertise() (string, error) {
	addr := o.raftAdvertise
	if addr == "" {
		addr = o.raftAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("--raft-advertise %q: peers need an IP of this replica to dial (in a pod: KDNSD_RAFT_ADVERTISE=$(POD_IP):7000)", addr)
	}
	return addr, nil
}

func (o *serveOptions) logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel)) // checked by validate
	opts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func (o *serveOptions) resolverConfig(log *slog.Logger, fwd dns.Handler) resolver.Config {
	cfg := resolver.Config{Zone: o.zone, TTL: o.ttl, Logger: log, PodMode: o.podMode, Forward: fwd}
	for _, ip := range o.nsAddrs {
		if addr, ok := netip.AddrFromSlice(ip); ok {
			cfg.NSAddrs = append(cfg.NSAddrs, addr.Unmap())
		}
	}
	return cfg
}

// flagConfig is the DNS configuration the flags give: what is in force
// where the committed configuration (the ConfigMap) sets nothing.
func (o *serveOptions) flagConfig() (*fsm.DNSConfig, error) {
	cfg := &fsm.DNSConfig{Source: "flags", Upstreams: o.upstreams, TTL: o.ttl, PodMode: o.podMode, CacheSize: o.cacheSize}
	seen := map[string]bool{}
	for _, s := range o.stubDomains {
		domain, servers, ok := strings.Cut(s, "=")
		if !ok || domain == "" || servers == "" {
			return nil, fmt.Errorf("--stub-domain %q: want domain=ip[:port][;ip[:port]…]", s)
		}
		fqdn := dns.CanonicalName(domain)
		if seen[fqdn] {
			return nil, fmt.Errorf("--stub-domain %q: %s is given twice", s, domain)
		}
		seen[fqdn] = true
		if dns.IsSubDomain(dns.CanonicalName(o.zone), fqdn) {
			return nil, fmt.Errorf("--stub-domain %q: %s is inside the cluster zone %s, which kdnsd answers itself", s, domain, o.zone)
		}
		cfg.StubDomains = append(cfg.StubDomains, fsm.StubDomain{Domain: fqdn, Servers: strings.Split(servers, ";")})
	}
	return cfg, nil
}

// forwarder builds a forwarder for the configuration in force.
func (o *serveOptions) forwarder(log *slog.Logger, cfg *fsm.DNSConfig) (*forward.Forwarder, error) {
	stubs := map[string][]string{}
	for _, s := range cfg.StubDomains {
		stubs[s.Domain] = s.Servers
	}
	f, err := forward.New(forward.Config{
		Upstreams: cfg.Upstreams, ResolvConf: o.resolvConf, StubDomains: stubs, LocalAddrs: o.dnsAddrs(),
		CacheSize: cfg.CacheSize, MaxNegativeTTL: time.Duration(cfg.NegativeTTL) * time.Second,
		MaxInFlight: o.maxInFlight, ServeStale: o.serveStale, Logger: log,
	})
	switch {
	case err != nil && cfg.Source == "flags":
		return nil, fmt.Errorf("forwarding (--upstream, --resolv-conf, --stub-domain): %w", err)
	case err != nil:
		return nil, fmt.Errorf("forwarding as %s configures it: %w", cfg.Source, err)
	}
	return f, nil
}

// sameForwarding reports whether a and b configure the forwarder alike.
func sameForwarding(a, b *fsm.DNSConfig) bool {
	x, y := *a, *b
	x.Source, x.Records, x.TTL, x.PodMode = "", nil, 0, ""
	y.Source, y.Records, y.TTL, y.PodMode = "", nil, 0, ""
	return x.Equal(&y)
}

// followForwarding switches the forwarder whenever the store publishes a
// configuration that forwards differently, until ctx ends. A configuration
// the forwarder refuses (say, every upstream is this replica's own
// address) leaves the one in force, with an error in the log.
func followForwarding(ctx context.Context, store *fsm.Store, sw *forward.Switch, flags, inForce *fsm.DNSConfig,
	build func(*fsm.DNSConfig) (*forward.Forwarder, error), log *slog.Logger) {
	ch, cancel := store.Subscribe()
	defer cancel()
	seen := store.View().Config().Config
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		st := store.View().Config()
		if st.Config == seen {
			continue
		}
		seen = st.Config
		next, _ := dnsconfig.InForce(flags, st)
		if sameForwarding(next, inForce) {
			continue
		}
		f, err := build(next)
		if err != nil {
			log.Error("cannot forward as the committed configuration says; forwarding stays as it was",
				"source", next.Source, "index", st.Index, "err", err)
			continue
		}
		sw.Set(f)
		inForce = next
		log.Info("forwarding configuration switched", "source", next.Source, "index", st.Index)
	}
}

// dnsAddrs are the addresses --dns-addr serves on: one, or with an
// unspecified host every address of this machine, on its port.
func (o *serveOptions) dnsAddrs() []netip.AddrPort {
	host, portText, err := net.SplitHostPort(o.dnsAddr)
	if err != nil {
		return nil
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		return []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}
	}
	ifaddrs, _ := net.InterfaceAddrs()
	var out []netip.AddrPort
	for _, a := range ifaddrs {
		if prefix, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, netip.AddrPortFrom(prefix.Addr(), uint16(port)))
		}
	}
	return out
}

// configMapName splits --config-map; ok is false when it is empty.
func (o *serveOptions) configMapName() (namespace, name string, err error) {
	if o.configMap == "" {
		return "", "", nil
	}
	namespace, name, ok := strings.Cut(o.configMap, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("--config-map %q: want namespace/name", o.configMap)
	}
	return namespace, name, nil
}

// shutdownBudget bounds the shutdown after the lameduck period: with the
// default 5 s lameduck it ends within the 30 s termination grace period of
// deploy/statefulset.
const shutdownBudget = 20 * time.Second

func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig and not running in a cluster: %w", err)
	}
	return cfg, nil
}

func serve(ctx context.Context, o serveOptions) error {
	log := o.logger().With("id", o.id)
	// client-go logs through klog; send it to the same place in the same format.
	klog.SetSlogLogger(log.With("component", "client-go"))
	limitMemory(log)
	restCfg, err := kubeConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubeclient.New(restCfg)
	if err != nil {
		return err
	}
	// The watcher's client is its own, so that its requests alone tell it
	// whether the API server answers (kubeclient.Reachability). A new
	// leader lists in pages (watcher.DefaultListPageSize): 100k services
	// and their slices take 41 requests, which client-go's default limit
	// (a burst of 10, then 5 a second) would spread over 6 s.
	watchCfg := rest.CopyConfig(restCfg)
	watchCfg.QPS, watchCfg.Burst = 20, 50
	watchClient, watchReach, err := kubeclient.NewTracked(watchCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}

	// The store is served from before Raft starts: a restarted replica
	// answers from disk at once, with or without quorum.
	loaded := collectLessWhileLoading()
	start := time.Now()
	store, err := fsm.Open(filepath.Join(o.dataDir, "fsm.db"), log)
	if err != nil {
		return err
	}
	defer store.Close()
	services, slices := store.View().Counts()
	log.Info("loaded record store", "applied_index", store.View().Index(), "services", services, "endpoint_slices", slices,
		"took", time.Since(start).Round(time.Millisecond))

	// Forwarding as the last committed configuration says, from the
	// start: with the API server down too.
	flags, err := o.flagConfig()
	if err != nil {
		return err
	}
	fwdLog := log.With("component", "forward")
	build := func(cfg *fsm.DNSConfig) (*forward.Forwarder, error) { return o.forwarder(fwdLog, cfg) }
	inForce, _ := dnsconfig.InForce(flags, store.View().Config())
	first, err := build(inForce)
	if err != nil && inForce.Source != "flags" {
		log.Error("cannot forward as the committed configuration says; forwarding as the flags say", "source", inForce.Source, "err", err)
		inForce, _ = dnsconfig.InForce(flags, nil)
		first, err = build(inForce)
	}
	if err != nil {
		return err
	}
	fwd := forward.NewSwitch(first)
	served := newServingMetrics()
	resCfg := o.resolverConfig(log, fwd)
	resCfg.Served = served.served
	res, err := resolver.New(resCfg)
	if err != nil {
		return err
	}
	// The records on disk are indexed before the DNS sockets open: a
	// restarted replica's first answers come from them, not the SERVFAIL of
	// a resolver that has no index yet (a chaos run on the node saw three
	// such answers right after a restart). Until then queries are refused,
	// which a stub resolver takes as a cue to ask the next server at once.
	start = time.Now()
	if v := store.View(); res.ServeRecords(v) {
		log.Info("indexed the stored records", "applied_index", v.Index(), "took", time.Since(start).Round(time.Millisecond))
	}
	loaded()
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	go res.Follow(serveCtx, store)
	go followForwarding(serveCtx, store, fwd, flags, inForce, build, fwdLog)

	// Every listener is up before Raft starts: a replica that cannot serve
	// should fail before it joins (or bootstraps) a cluster.
	dnsErr, dnsReady := make(chan error, 1), make(chan struct{})
	go func() {
		dnsErr <- dnsserver.ListenAndServe(serveCtx, o.dnsAddr, dnsserver.Config{Handler: res, Logger: log, Counters: served.dns}, func() {
			log.Info("serving DNS", "addr", o.dnsAddr, "zone", o.zone)
			// Loop detection sends a probe upstream that must find us
			// listening if the upstream is us.
			fwd.Start(serveCtx)
			close(dnsReady)
		})
	}()
	select {
	case <-dnsReady:
	case err := <-dnsErr:
		return fmt.Errorf("dns: %w", err)
	}
	httpListener, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	defer httpListener.Close()

	advertise, _ := o.advertise() // checked by validate
	raftAuth, err := o.raftAuth.plane(o.id, advertise, log)
	if err != nil {
		return err
	}
	mem, err := o.discovery.membership(&o, client, log)
	if err != nil {
		return err
	}
	// Who bootstraps and reconciles the group: the StatefulSet's pods, the
	// static peer list, or nobody (a read replica the leader adds).
	var group interface {
		Bootstrap(context.Context, membership.Node) error
		Reconcile(context.Context, membership.Node)
	}
	if mem != nil {
		group = mem
	} else if static, err := o.discovery.static(&o, log); err != nil {
		return err
	} else if static != nil {
		group = static
	}
	raftCfg := raftnode.Config{
		ID: o.id, BindAddr: o.raftAddr, Advertise: o.raftAdvertise,
		DataDir: o.dataDir, Logger: log, RaftLogLevel: o.raftLogLevel, Auth: raftAuth,
	}
	if mem != nil {
		// Not waited for: with the API server down, Raft still starts from
		// its own state and the configured addresses.
		go func() {
			if err := mem.Start(serveCtx); err != nil && serveCtx.Err() == nil {
				log.Error("kubernetes discovery", "err", err)
			}
		}()
		raftCfg.Discovered = mem.Addr
	}
	node, err := raftnode.Start(raftCfg, store)
	if err != nil {
		return err
	}
	releaseLog := func() {
		if err := node.ReleaseLogMapping(); err != nil {
			log.Warn("could not release the Raft log file's mapped pages; they stay in RSS until the kernel reclaims them", "err", err)
		}
	}
	go releaseAfterBursts(serveCtx, releaseCheck, quietBelow, releaseAbove, releaseLog, log)

	// The pod mode in force (the configuration's, else --pod-mode) decides
	// whether the leader's watcher replicates pods: a term restarts its
	// watcher when that changes.
	podsWanted := func() bool { return resolver.PodModeOf(o.podMode, store.View()) == resolver.PodVerified }
	newWatcher := func(pods bool) (*watcher.Watcher, error) {
		return watcher.New(watcher.Config{Client: watchClient, Reachability: watchReach, Views: store, Raft: node, Logger: log,
			WatchPods: pods, CommandVersion: node.CommandVersion, Committed: served.committed})
	}
	watchers := &leaderWatchers{node: node}
	w, err := newWatcher(podsWanted())
	if err != nil {
		node.Shutdown()
		return err
	}
	watchers.w.Store(w)
	if ns, name, _ := o.configMapName(); name != "" { // checked by validate
		watchers.cw, err = watcher.NewConfigWatcher(watcher.ConfigWatcherConfig{Client: client, Namespace: ns, Name: name,
			Zone: o.zone, CommandVersion: node.CommandVersion, Views: store, Raft: node, Logger: log})
		if err != nil {
			node.Shutdown()
			return err
		}
	}
	cw := watchers.cw
	adminSrv, err := o.adminAPI.server(o.dataDir, node, store, res, watchers.state, mem, flags, log)
	if err != nil {
		node.Shutdown()
		return err
	}
	// Leader-only work and bootstrap end before Raft shuts down.
	watchCtx, stopWatching := context.WithCancel(ctx)
	var leaderWork sync.WaitGroup
	if group != nil {
		leaderWork.Go(func() {
			if err := group.Bootstrap(watchCtx, node); err != nil && watchCtx.Err() == nil {
				log.Error("bootstrap", "err", err)
			}
		})
	}
	leaderWork.Go(func() {
		node.WhileLeader(watchCtx, func(term context.Context) {
			log.Info("leading: watching the Kubernetes API")
			var reconcile sync.WaitGroup
			if group != nil {
				reconcile.Go(func() { group.Reconcile(term, node) })
			}
			if cw != nil {
				reconcile.Go(func() { cw.Run(term) })
			}
			for {
				pods := podsWanted()
				w, err := newWatcher(pods) // as at start, but for WatchPods
				if err != nil {
					log.Error("watcher", "err", err)
					break
				}
				watchers.w.Store(w)
				run, stop := context.WithCancel(term)
				go stopWhenPodsChange(run, stop, store, pods, podsWanted)
				if err := w.Run(run); err != nil && term.Err() == nil {
					log.Error("watcher stopped", "err", err)
				}
				stop()
				if term.Err() != nil {
					break
				}
				log.Info("the pod mode in force changed: restarting the watcher", "watch_pods", !pods)
			}
			reconcile.Wait()
			log.Info("no longer leading: stopped watching")
		})
	})

	var draining atomic.Bool
	httpSrv := &http.Server{Handler: statusMux(node, store, res, served, fwd, watchers.state, cw, draining.Load), ReadHeaderTimeout: 5 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- httpSrv.Serve(httpListener) }()

	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	adminErr, adminDone := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(adminDone)
		if adminSrv != nil {
			adminErr <- adminSrv.Serve(adminCtx)
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		// Unready first, still answering: kube-proxy takes a moment to
		// stop sending this pod queries, which would otherwise be lost.
		draining.Store(true)
		log.Info("shutting down: not ready, answering DNS for the lameduck period", "lameduck", o.lameduck)
		time.Sleep(o.lameduck)
		log.Info("shutting down")
	case err := <-dnsErr:
		runErr = fmt.Errorf("dns: %w", err)
	case err := <-httpErr:
		runErr = fmt.Errorf("http %s: %w", o.httpAddr, err)
	case err := <-adminErr:
		runErr = fmt.Errorf("admin API: %w", err)
	}
	// A shutdown that hangs would hold the pod until the kubelet kills it
	// (a chaos run on the node saw one stay over a minute after SIGTERM):
	// past shutdownBudget the goroutines' stacks go to stderr, for the
	// report, and the process exits. The records are as safe as after a
	// kill: the stores are crash-safe.
	stuck := time.AfterFunc(shutdownBudget, func() {
		log.Error("shutdown is stuck; writing every goroutine's stack to stderr and exiting", "budget", shutdownBudget)
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		os.Exit(1)
	})
	defer stuck.Stop()
	// Admin calls end before the node they act on shuts down.
	stopAdmin()
	<-adminDone
	stopWatching()
	leaderWork.Wait()
	if err := node.Shutdown(); err != nil {
		log.Warn("raft shutdown", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	httpSrv.Shutdown(shutdownCtx)
	stopServing()
	return runErr
}

// statusMux serves the health, readiness, metrics and status endpoints.
func statusMux(node *raftnode.Node, store *fsm.Store, res *resolver.Resolver, served *servingMetrics, fwd *forward.Switch, watcherState func() string, cw *watcher.ConfigWatcher, draining func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metrics(node, res, served, fwd, cw), promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, "ok") })
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		// Ready once answering from records (DNS is up before this server
		// starts) and not far behind what the cluster has committed; never
		// while applying is stopped at an entry this build cannot decode,
		// as the records are then as old as that entry and will not move.
		switch blocked := node.ApplyBlocked(); {
		case draining():
			http.Error(rw, "shutting down", http.StatusServiceUnavailable)
		case blocked != nil:
			http.Error(rw, blocked.Error(), http.StatusServiceUnavailable)
		case res.AppliedIndex() == 0:
			http.Error(rw, "no records yet", http.StatusServiceUnavailable)
		case !node.CaughtUp():
			http.Error(rw, "catching up with the leader", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(rw, "ok")
		}
	})
	mux.HandleFunc("/status", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		enc.Encode(admin.NewStatus(node.Status(), store.View(), res.AppliedIndex(), watcherState()))
	})
	return mux
}

// leaderWatchers are the watchers a leader runs, for status pages.
type leaderWatchers struct {
	node *raftnode.Node
	w    atomic.Pointer[watcher.Watcher] // the current term's
	cw   *watcher.ConfigWatcher          // nil without --config-map
}

// state describes the watchers of a leader: the Kubernetes watcher's state,
// and the configuration watcher's unless it simply watches.
func (l *leaderWatchers) state() string {
	if !l.node.IsLeader() {
		return "follower"
	}
	st := l.w.Load().State()
	if l.cw != nil {
		if c := l.cw.State(); c != "watching" {
			st += "; configmap: " + c
		}
	}
	return st
}

// stopWhenPodsChange calls stop once whether pods are wanted differs from
// pods, or when ctx ends.
func stopWhenPodsChange(ctx context.Context, stop func(), store *fsm.Store, pods bool, wanted func() bool) {
	ch, cancel := store.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if wanted() != pods {
				stop()
				return
			}
		}
	}
}
