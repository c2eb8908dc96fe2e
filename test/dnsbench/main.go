// Command dnsbench is `make bench`'s load test: it serves one record set from
// a kdnsd replica (the real binary, answering from its on-disk store), from
// NSD (Debian's authoritative server, the fast reference) and from a minimal
// miekg/dns server answering from a Go map, and runs the same dnsperf query
// mix against each in turn, on loopback, in one run. It prints a Markdown
// table with each server's QPS, latency and its ratio to the references.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/cluster"
)

func main() {
	kdnsdBin := flag.String("kdnsd", "bin/kdnsd", "kdnsd binary")
	services := flag.Int("services", 1050, "ClusterIP services, each with a slice of 3 ready endpoints")
	headless := flag.Int("headless", 50, "headless services with 3 endpoints with hostnames")
	seconds := flag.Int("l", 8, "dnsperf run length per server, seconds")
	rounds := flag.Int("rounds", 2, "times every server is measured, alternating")
	serveMap := flag.String("serve-map", "", "internal: serve the zone file given as the argument from a Go map on this address")
	flag.Parse()
	if *serveMap != "" {
		log.Fatal(serveFromMap(*serveMap, flag.Arg(0)))
	}
	if err := run(*kdnsdBin, *services, *headless, *seconds, *rounds); err != nil {
		log.Fatal(err)
	}
}

const zone = "cluster.local."

type server struct {
	name string
	addr string
	cmd  *exec.Cmd
}

func run(kdnsdBin string, nServices, nHeadless, seconds, rounds int) error {
	for _, tool := range []string{"dnsperf", "nsd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: apt-get install dnsperf nsd", tool)
		}
	}
	dir, err := os.MkdirTemp("", "kdnsd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	services, slices := dataset(nServices, nHeadless)
	zoneFile := filepath.Join(dir, "cluster.local.zone")
	if err := writeZone(zoneFile, services, slices); err != nil {
		return err
	}
	queries := filepath.Join(dir, "queries.txt")
	if err := writeQueries(queries, services, slices); err != nil {
		return err
	}

	kd, err := startKdnsd(kdnsdBin, dir, services, slices)
	if err != nil {
		return err
	}
	nsd, err := startNSD(dir, zoneFile)
	if err != nil {
		stop(kd)
		return err
	}
	mapSrv, err := startMapServer(dir, zoneFile)
	if err != nil {
		stop(kd)
		stop(nsd)
		return err
	}
	servers := []*server{kd, nsd, mapSrv}
	defer func() {
		for _, s := range servers {
			stop(s)
		}
	}()
	for _, s := range servers {
		if err := waitAnswering(s.addr, services[0]); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}

	type result struct{ qps, latency []float64 }
	results := map[string]*result{}
	for round := range rounds {
		for _, s := range servers {
			qps, lat, err := dnsperf(s.addr, queries, seconds)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %-28s %8.0f QPS  %.2f ms\n", round+1, s.name, qps, lat*1000)
			r := results[s.name]
			if r == nil {
				r = &result{}
				results[s.name] = r
			}
			r.qps = append(r.qps, qps)
			r.latency = append(r.latency, lat)
		}
	}
	rss := rssKB(kd.cmd.Process.Pid)

	mean := func(xs []float64) float64 {
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		return sum / float64(len(xs))
	}
	nsdQPS, mapQPS := mean(results[nsd.name].qps), mean(results[mapSrv.name].qps)
	fmt.Printf("%d ClusterIP services with 3 endpoints each + %d headless services, `dnsperf -l %d -c 8 -T 1 -q 500`, %d alternating rounds, mean:\n\n",
		nServices, nHeadless, seconds, rounds)
	fmt.Println("| server | QPS | avg latency | ÷ NSD | ÷ miekg map server |")
	fmt.Println("|---|---|---|---|---|")
	for _, s := range servers {
		q := mean(results[s.name].qps)
		fmt.Printf("| %s | %.0f | %.2f ms | %.2f | %.2f |\n", s.name, q, mean(results[s.name].latency)*1000, q/nsdQPS, q/mapQPS)
	}
	fmt.Printf("\nkdnsd RSS after the runs: %.1f MB\n", float64(rss)/1024)
	return nil
}

// dataset makes the record set: ClusterIP services with one slice of three
// ready endpoints, and headless services whose endpoints have hostnames.
func dataset(nServices, nHeadless int) ([]*fsm.Service, []*fsm.EndpointSlice) {
	var services []*fsm.Service
	var slices []*fsm.EndpointSlice
	port := []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}
	ip := func(base, i int) netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(base), byte(i >> 8), byte(i)})
	}
	for i := range nServices + nHeadless {
		ns := fmt.Sprintf("ns%d", i%20)
		name := fmt.Sprintf("svc%d", i)
		svc := &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, Ports: port}
		headless := i >= nServices
		if headless {
			svc.Name = fmt.Sprintf("hl%d", i)
			svc.Headless = true
		} else {
			svc.ClusterIPs = []netip.Addr{ip(96, i+10)}
		}
		sl := &fsm.EndpointSlice{Namespace: ns, Name: svc.Name + "-x", Service: svc.Name, Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}}}
		for e := range 3 {
			ep := fsm.Endpoint{Addresses: []netip.Addr{ip(244, i*4+e)}, Ready: true}
			if headless {
				ep.Hostname = fmt.Sprintf("h%d", e)
			}
			sl.Endpoints = append(sl.Endpoints, ep)
		}
		services = append(services, svc)
		slices = append(slices, sl)
	}
	return services, slices
}

func fqdn(s *fsm.Service) string { return s.Name + "." + s.Namespace + ".svc." + zone }

// writeZone writes the records kdnsd serves for the dataset as a zone file,
// for NSD and the map server.
func writeZone(path string, services []*fsm.Service, slices []*fsm.EndpointSlice) error {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 30\n%s IN SOA ns.dns.%s hostmaster.%s 1 7200 1800 86400 30\n%s IN NS ns.dns.%s\nns.dns.%s IN A 10.96.0.10\n", zone, zone, zone, zone, zone, zone)
	for i, s := range services {
		sl := slices[i]
		if !s.Headless {
			fmt.Fprintf(&b, "%s IN A %s\n_http._tcp.%s IN SRV 0 100 80 %s\n", fqdn(s), s.ClusterIPs[0], fqdn(s), fqdn(s))
			continue
		}
		for _, ep := range sl.Endpoints {
			host := ep.Hostname + "." + fqdn(s)
			fmt.Fprintf(&b, "%s IN A %s\n%s IN A %s\n_http._tcp.%s IN SRV 0 33 8080 %s\n", fqdn(s), ep.Addresses[0], host, ep.Addresses[0], fqdn(s), host)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeQueries writes dnsperf's input: 60% ClusterIP A, 20% headless A, 10%
// SRV, 5% AAAA (no data) and 5% names that do not exist.
func writeQueries(path string, services []*fsm.Service, slices []*fsm.EndpointSlice) error {
	rng := rand.New(rand.NewPCG(1, 2))
	var clusterIP, headless []*fsm.Service
	for _, s := range services {
		if s.Headless {
			headless = append(headless, s)
		} else {
			clusterIP = append(clusterIP, s)
		}
	}
	var b strings.Builder
	for range 20000 {
		switch p := rng.IntN(100); {
		case p < 60:
			fmt.Fprintf(&b, "%s A\n", fqdn(clusterIP[rng.IntN(len(clusterIP))]))
		case p < 80:
			fmt.Fprintf(&b, "%s A\n", fqdn(headless[rng.IntN(len(headless))]))
		case p < 90:
			fmt.Fprintf(&b, "_http._tcp.%s SRV\n", fqdn(clusterIP[rng.IntN(len(clusterIP))]))
		case p < 95:
			fmt.Fprintf(&b, "%s AAAA\n", fqdn(clusterIP[rng.IntN(len(clusterIP))]))
		default:
			fmt.Fprintf(&b, "missing%d.ns1.svc.%s A\n", rng.IntN(1000), zone)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func startProcess(name, addr, logPath string, argv ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &server{name: name, addr: addr, cmd: cmd}, nil
}

func stop(s *server) {
	if s != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// startKdnsd starts a one-replica cluster whose API server is unreachable
// and loads the dataset the way an operator restores a backup: a snapshot
// sent with `kdnsd snapshot restore` through the admin API. The replica then
// answers from its own store.
func startKdnsd(bin, dir string, services []*fsm.Service, slices []*fsm.EndpointSlice) (*server, error) {
	snapshot := filepath.Join(dir, "dataset.snap")
	f, err := os.Create(snapshot)
	if err != nil {
		return nil, err
	}
	err = fsm.WriteSnapshot(f, fsm.NewView(1, services, slices))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "unreachable.kubeconfig")
	if err := cluster.WriteUnreachableKubeconfig(kubeconfig); err != nil {
		return nil, err
	}
	var addrs [4]string
	for i := range addrs {
		if addrs[i], err = cluster.FreeAddr(); err != nil {
			return nil, err
		}
	}
	s, err := startProcess("kdnsd (1 replica)", addrs[0], filepath.Join(dir, "kdnsd.log"), bin, "serve",
		"--id", "bench-0", "--peers", "bench-0="+addrs[1], "--raft-addr", addrs[1],
		"--dns-addr", addrs[0], "--http-addr", addrs[2], "--admin-addr", addrs[3], "--data-dir", filepath.Join(dir, "kdnsd"),
		"--kubeconfig", kubeconfig, "--upstream", "127.0.0.1:1", "--log-level", "error", "--raft-log-level", "error")
	if err != nil {
		return nil, err
	}
	// The restore needs a leader; retry until the replica has elected itself.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command(bin, "snapshot", "restore", snapshot, "--server", "http://"+addrs[3]).CombinedOutput()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			stop(s)
			return nil, fmt.Errorf("kdnsd snapshot restore: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startNSD(dir, zoneFile string) (*server, error) {
	addr, err := cluster.FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	nsdDir := filepath.Join(dir, "nsd")
	if err := os.MkdirAll(nsdDir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(nsdDir, "nsd.conf")
	// Two server processes for two cores; rate limiting off (its default
	// RRL would cap it far below its speed).
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`server:
  ip-address: %s@%s
  server-count: 2
  username: ""
  chroot: ""
  zonesdir: "%s"
  database: ""
  zonelistfile: "%s/zone.list"
  xfrdfile: "%s/xfrd.state"
  pidfile: "%s/nsd.pid"
  logfile: "%s/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: %s
  zonefile: "%s"
`, host, port, nsdDir, nsdDir, nsdDir, nsdDir, nsdDir, zone, zoneFile)), 0o644)
	if err != nil {
		return nil, err
	}
	return startProcess("NSD 4.6.1", addr, filepath.Join(nsdDir, "stderr.log"), "nsd", "-d", "-c", conf)
}

func startMapServer(dir, zoneFile string) (*server, error) {
	addr, err := cluster.FreeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess("miekg/dns map server", addr, filepath.Join(dir, "map.log"), self, "-serve-map", addr, zoneFile)
}

// serveFromMap is the minimal miekg/dns reference: it answers from a map of
// the zone's RRsets, over UDP.
func serveFromMap(addr, zoneFile string) error {
	f, err := os.Open(zoneFile)
	if err != nil {
		return err
	}
	type key struct {
		name  string
		qtype uint16
	}
	records := map[key][]dns.RR{}
	names := map[string]bool{}
	var soa dns.RR
	zp := dns.NewZoneParser(f, zone, zoneFile)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		records[key{h.Name, h.Rrtype}] = append(records[key{h.Name, h.Rrtype}], rr)
		names[h.Name] = true
		if h.Rrtype == dns.TypeSOA {
			soa = rr
		}
	}
	if err := zp.Err(); err != nil {
		return err
	}
	dns.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		if rrs := records[key{name, q.Qtype}]; len(rrs) > 0 {
			m.Answer = rrs
		} else {
			if !names[name] {
				m.Rcode = dns.RcodeNameError
			}
			m.Ns = []dns.RR{soa}
		}
		w.WriteMsg(m)
	})
	return dns.ListenAndServe(addr, "udp", nil)
}

func waitAnswering(addr string, s *fsm.Service) error {
	m := new(dns.Msg)
	m.SetQuestion(fqdn(s), dns.TypeA)
	deadline := time.Now().Add(20 * time.Second)
	for {
		reply, err := dns.Exchange(m, addr)
		if err == nil && len(reply.Answer) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer for %s at %s: %v", fqdn(s), addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	qpsLine     = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latencyLine = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	lostLine    = regexp.MustCompile(`Queries lost:\s+(\d+)`)
)

func dnsperf(addr, queries string, seconds int) (qps, latency float64, err error) {
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("dnsperf", "-s", host, "-p", port, "-d", queries,
		"-l", strconv.Itoa(seconds), "-c", "8", "-T", "1", "-q", "500").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	q, l := qpsLine.FindSubmatch(out), latencyLine.FindSubmatch(out)
	if q == nil || l == nil {
		return 0, 0, fmt.Errorf("cannot read dnsperf output:\n%s", out)
	}
	if lost := lostLine.FindSubmatch(out); lost != nil && string(lost[1]) != "0" {
		fmt.Fprintf(os.Stderr, "%s: %s queries lost\n", addr, lost[1])
	}
	qps, _ = strconv.ParseFloat(string(q[1]), 64)
	latency, _ = strconv.ParseFloat(string(l[1]), 64)
	return qps, latency, nil
}

func rssKB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb
		}
	}
	return 0
}
