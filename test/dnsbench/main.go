// Command dnsbench is `make bench`'s load test. It starts a real
// kube-apiserver and etcd (test/testenv), creates a generated set of
// Services and EndpointSlices through the API, and serves that set from
// kdnsd (a cluster of the real binary on loopback, fed by the API server),
// CoreDNS with its kubernetes plugin fed by the same API server (without and
// with `cache`), NSD (Debian's authoritative server, the fast reference) and
// a minimal miekg/dns server answering from a Go map, the last two from a
// zone file of the same records. In one run it measures, servers alternated:
//
//   - QPS with dnsperf unlimited, the server pinned to one core and dnsperf
//     to the other (taskset);
//   - the server's CPU time per answered query at a fixed offered load
//     (dnsperf -Q; utime+stime of its process tree from /proc) and its RSS;
//   - for the servers fed by the API: how long from start to answering the
//     whole set, how many watches they hold against the API server (from the
//     API server's own /metrics), and the propagation delay from the API's
//     acknowledgement of a write to the slowest replica answering it.
//
// It prints Markdown tables with the figures and their ratios to CoreDNS
// with cache, NSD and the map server, and can draw them as a PNG chart.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/cluster"
)

type config struct {
	kdnsd, coredns     string
	services, headless int
	replicas           int
	seconds, rounds    int
	rate, trials       int
	chart              string
	memLimit           string // -scale: the replicas' GOMEMLIMIT
	load               string // how the dataset is created: api or etcd (loadVia)
}

func main() {
	var c config
	flag.StringVar(&c.kdnsd, "kdnsd", "bin/kdnsd", "kdnsd binary")
	flag.StringVar(&c.coredns, "coredns", "", "CoreDNS binary (test/dnsbench/build-coredns.sh builds it); empty leaves CoreDNS out")
	flag.IntVar(&c.services, "services", 1000, "ClusterIP services, each with a slice of 3 ready endpoints (10000, 100000 for the larger runs)")
	flag.IntVar(&c.headless, "headless", 50, "headless services with 3 endpoints with hostnames")
	flag.IntVar(&c.replicas, "replicas", 3, "kdnsd replicas (dnsperf asks the first)")
	flag.IntVar(&c.seconds, "l", 8, "dnsperf run length, seconds")
	flag.IntVar(&c.rounds, "rounds", 2, "times every server is measured, alternating (with -restart: restarts)")
	flag.IntVar(&c.rate, "rate", 20000, "offered load (dnsperf -Q) of the CPU-per-query runs")
	flag.IntVar(&c.trials, "trials", 20, "propagation trials")
	flag.StringVar(&c.chart, "chart", "", "write a PNG chart of the results to this path")
	load := flag.String("load", "auto", "how the dataset is created: api (through the API server), etcd (written into its etcd: kube-apiserver's ClusterIP allocation slows down with every service), or auto (etcd above 20000 ClusterIP services)")
	restart := flag.Bool("restart", false, "only measure a one-replica kdnsd restarted with its API server unreachable, at -services (BENCHMARKS.md)")
	flag.StringVar(&c.memLimit, "memlimit", "", "with -scale: GOMEMLIMIT of the replicas (what kdnsd sets itself in a container: 90% of its memory limit)")
	scale := flag.Bool("scale", false, "only measure kdnsd fed by the API server at -services and -headless: start, memory, a new leader's resync (BENCHMARKS.md; -services 0 -headless 100000 for 100k)")
	serveMap := flag.String("serve-map", "", "internal: serve the zone file given as the argument from a Go map on this address")
	flag.Parse()
	if *serveMap != "" {
		log.Fatal(serveFromMap(*serveMap, flag.Arg(0)))
	}
	var err error
	if c.load, err = loadVia(*load, c.services); err != nil {
		log.Fatal(err)
	}
	if *restart {
		if err := measureRestart(c.kdnsd, c.services, c.rounds); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *scale {
		if err := measureScale(c); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(c); err != nil {
		log.Fatal(err)
	}
}

func run(c config) error {
	for _, tool := range []string{"dnsperf", "nsd", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: apt-get install dnsperf nsd util-linux", tool)
		}
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "kdnsd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	services, slices := dataset(c.services, c.headless)
	zoneFile := filepath.Join(dir, "cluster.local.zone")
	if err := writeZone(zoneFile, services, slices); err != nil {
		return err
	}
	queries := filepath.Join(dir, "queries.txt")
	if err := writeQueries(queries, services); err != nil {
		return err
	}

	env, cs, took, err := startAPI(ctx, c.load, services, slices)
	if err != nil {
		return err
	}
	defer env.Stop()
	logf("created %d services and %d slices (%s) in %v", len(services), len(slices), loadedHow(c.load), took.Round(time.Millisecond))

	// The servers fed by the API start one after the other, so that the
	// watches each adds to the API server's count are its own.
	last, lastSlice := services[len(services)-1], slices[len(slices)-1]
	name, want := fqdn(last), expectedA(last, lastSlice).String()
	var results []*result
	defer func() {
		for _, r := range results {
			r.server.stop()
		}
	}()
	startFed := func(start func() (*server, []string, error)) (*result, error) {
		before, err := readWatches(ctx, cs)
		if err != nil {
			return nil, err
		}
		began := time.Now()
		s, addrs, err := start()
		if err != nil {
			return nil, err
		}
		r := &result{server: s, addrs: addrs, fed: true}
		results = append(results, r)
		if _, err := slowestAnswer(addrs, name, want, began, startTimeout); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		r.startup = time.Since(began)
		// Let every watch be opened, not only those answering needed.
		time.Sleep(2 * time.Second)
		after, err := readWatches(ctx, cs)
		if err != nil {
			return nil, err
		}
		r.watches = after - before
		logf("%s answers the whole set %v after its start; it holds %d watches", s.name, r.startup.Round(time.Millisecond), r.watches)
		return r, nil
	}
	var kdnsdCluster *cluster.Cluster
	kd, err := startFed(func() (*server, []string, error) {
		s, cl, err := startKdnsd(c.kdnsd, env.KdnsdKubeconfig, dir, c.replicas)
		kdnsdCluster = cl
		if err != nil {
			return nil, nil, err
		}
		var addrs []string
		for _, r := range cl.Replicas {
			addrs = append(addrs, r.DNSAddr)
		}
		return s, addrs, nil
	})
	if err != nil {
		return err
	}
	propagationTargets := []propagationTarget{{kd.server.name, kd.addrs}}
	if c.coredns != "" {
		for _, cache := range []bool{false, true} {
			r, err := startFed(func() (*server, []string, error) {
				s, err := startCoreDNS(c.coredns, env.AdminKubeconfig, dir, cache)
				if err != nil {
					return nil, nil, err
				}
				return s, []string{s.addr}, nil
			})
			if err != nil {
				return err
			}
			// With its cache, CoreDNS would answer from a cached NXDOMAIN
			// for up to the denial TTL: propagation is measured without.
			r.reference = cache
			if !cache {
				propagationTargets = append(propagationTargets, propagationTarget{r.server.name, r.addrs})
			}
		}
	}
	for _, start := range []func(string, string) (*server, error){startNSD, startMapServer} {
		s, err := start(dir, zoneFile)
		if err != nil {
			return err
		}
		results = append(results, &result{server: s, addrs: []string{s.addr}, reference: true})
		if _, err := slowestAnswer([]string{s.addr}, name, want, time.Now(), startTimeout); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}

	for round := range c.rounds {
		logf("load round %d of %d", round+1, c.rounds)
		for _, r := range results {
			if err := measureLoad(r.server, queries, c.seconds, c.rate, &r.load); err != nil {
				return fmt.Errorf("%s: %w", r.server.name, err)
			}
		}
	}
	for _, r := range results {
		for _, pid := range r.server.pids() {
			r.rssKB = append(r.rssKB, rssKB(pid))
		}
	}

	logf("propagation: %d trials", c.trials)
	delays, err := measurePropagation(ctx, cs, propagationTargets, c.trials)
	if err != nil {
		return err
	}
	for _, r := range results {
		r.propagation = delays[r.server.name]
	}

	logf("kdnsd: killing the leader and timing its successor's resync")
	resynced, err := measureResync(ctx, kdnsdCluster, startTimeout)
	if err != nil {
		return err
	}

	rep := report{config: c, results: results, resync: resynced}
	rep.writeMarkdown(os.Stdout)
	if c.chart != "" {
		if err := rep.writeChart(c.chart); err != nil {
			return err
		}
		logf("chart written to %s", c.chart)
	}
	return nil
}

// expectedA is one address the A query for s's name is answered with.
func expectedA(s *fsm.Service, sl *fsm.EndpointSlice) netip.Addr {
	if s.Headless {
		return sl.Endpoints[0].Addresses[0]
	}
	return s.ClusterIPs[0]
}

// startTimeout bounds how long a server may take to answer the whole
// dataset after its start.
const startTimeout = 10 * time.Minute

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dnsbench: "+format+"\n", args...)
}
