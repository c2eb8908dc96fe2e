package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/test/cluster"
)

// Cores: every measured server runs on serverCore and dnsperf on
// dnsperfCore (taskset -c), so that they never take each other's CPU.
const (
	serverCore  = "1"
	dnsperfCore = "0"
)

// server is one DNS server under test: addr is where dnsperf sends its
// queries, pid the process answering them (CPU and RSS are read from it and
// its children), others the rest of a replicated server's processes, whose
// RSS is reported too.
type server struct {
	name   string
	addr   string
	pid    int
	others []int
	stop   func()
}

// pids is every process of the server, the measured one first.
func (s *server) pids() []int { return append([]int{s.pid}, s.others...) }

// startProcess starts argv pinned to serverCore, its output going to logPath.
func startProcess(name, addr, logPath string, argv ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command("taskset", append([]string{"-c", serverCore}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &server{name: name, addr: addr, pid: cmd.Process.Pid, stop: func() {
		cmd.Process.Kill()
		cmd.Wait()
	}}, nil
}

// startKdnsd starts a cluster of kdnsd replicas on loopback fed by the API
// server of kubeconfig. The first replica, the one dnsperf asks, runs
// pinned to serverCore through a wrapper that execs kdnsd under taskset (so
// its pid is kdnsd's own and Go sizes GOMAXPROCS to the one core). env is
// added to every replica's environment.
func startKdnsd(bin, kubeconfig, dir string, replicas int, env ...string) (*server, *cluster.Cluster, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, nil, err
	}
	c, err := cluster.New(bin, kubeconfig, filepath.Join(dir, "kdnsd"), replicas)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	pinned := filepath.Join(c.Dir, "kdnsd-pinned")
	script := fmt.Sprintf("#!/bin/sh\nexec taskset -c %s %s \"$@\"\n", serverCore, bin)
	if err := os.WriteFile(pinned, []byte(script), 0o755); err != nil {
		return nil, nil, err
	}
	c.Replicas[0].Bin = pinned
	for _, r := range c.Replicas {
		r.Env = env
	}
	c.ExtraArgs = []string{"--log-level", "error", "--raft-log-level", "error"}
	if err := c.StartAll(); err != nil {
		c.StopAll()
		return nil, nil, err
	}
	s := &server{name: fmt.Sprintf("kdnsd (%d replicas)", replicas), addr: c.Replicas[0].DNSAddr, stop: c.StopAll}
	for i, r := range c.Replicas {
		if i == 0 {
			s.pid = r.Pid()
		} else {
			s.others = append(s.others, r.Pid())
		}
	}
	return s, c, nil
}

// startCoreDNS starts CoreDNS serving the cluster zone with its kubernetes
// plugin fed by the API server of kubeconfig, with `cache 30` if cache.
func startCoreDNS(bin, kubeconfig, dir string, cache bool) (*server, error) {
	addr, err := cluster.FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	name, cacheLine := "CoreDNS 1.15.0", ""
	if cache {
		name, cacheLine = "CoreDNS 1.15.0 + cache", "\n    cache 30"
	}
	conf := filepath.Join(dir, fmt.Sprintf("Corefile-%s", port))
	corefile := fmt.Sprintf(`%s:%s {
    bind %s
    errors
    kubernetes %s {
        kubeconfig %s
    }%s
}
`, zone, port, host, strings.TrimSuffix(zone, "."), kubeconfig, cacheLine)
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	return startProcess(name, addr, conf+".log", bin, "-conf", conf)
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
	// One server process for its one core; rate limiting off (its default
	// RRL would cap it far below its speed).
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`server:
  ip-address: %s@%s
  server-count: 1
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
	return startProcess("NSD "+nsdVersion(), addr, filepath.Join(nsdDir, "stderr.log"), "nsd", "-d", "-c", conf)
}

// nsdVersion is what `nsd -v` says its version is.
func nsdVersion() string {
	out, _ := exec.Command("nsd", "-v").CombinedOutput()
	if f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0]); len(f) > 0 {
		return f[len(f)-1]
	}
	return "?"
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

// answers reports whether the server at addr answers name's A query with
// want among the addresses.
func answers(client *dns.Client, addr, name, want string) bool {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	reply, _, err := client.Exchange(m, addr)
	if err != nil {
		return false
	}
	for _, rr := range reply.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.String() == want {
			return true
		}
	}
	return false
}

// procTree is pid and its descendants, found through /proc.
func procTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// statFields are the fields of /proc/pid/stat after the command name, from
// the state (field 3) on.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// The name is in parentheses and may itself hold spaces and ")".
	s := string(b)
	i := strings.LastIndex(s, ") ")
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// clockTicks is the unit of utime and stime in /proc/pid/stat.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil && n > 0 {
		return float64(n)
	}
	return 100
}()

// cpuTime is the user + system CPU time used so far by pid and its
// descendants.
func cpuTime(pid int) time.Duration {
	var ticks int
	for _, p := range procTree(pid) {
		// utime and stime are fields 14 and 15; statFields starts at 3.
		if f := statFields(p); len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			s, _ := strconv.Atoi(f[12])
			ticks += u + s
		}
	}
	return time.Duration(float64(ticks) / clockTicks * float64(time.Second))
}

// rssKB is the resident set size of pid and its descendants, in KiB.
func rssKB(pid int) int {
	total := 0
	for _, p := range procTree(pid) {
		total += vmRSS(p)
	}
	return total
}

// vmRSS is one process's VmRSS in KiB.
func vmRSS(pid int) int { return procStatusKB(pid, "VmRSS") }

// procStatusKB is the field of /proc/pid/status given in kB, such as
// VmRSS, RssAnon or RssFile; 0 if it cannot be read.
func procStatusKB(pid int, field string) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb
		}
	}
	return 0
}
