package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// load is what one server did in the load runs of all rounds.
type load struct {
	qps, latency []float64       // unlimited runs: answered per second, mean latency (s)
	cpuPerQuery  []time.Duration // fixed-rate runs: the server's CPU time / answered queries
	fixedQPS     []float64       // fixed-rate runs: answered per second
}

// measureLoad runs dnsperf against s twice: unlimited (its QPS) and at the
// fixed offered rate (the CPU its process tree spent per answered query).
func measureLoad(s *server, queries string, seconds, rate int, into *load) error {
	run, err := dnsperf(s.addr, queries, seconds, 0)
	if err != nil {
		return err
	}
	into.qps = append(into.qps, run.qps)
	into.latency = append(into.latency, run.latency)
	before := cpuTime(s.pid)
	fixed, err := dnsperf(s.addr, queries, seconds, rate)
	if err != nil {
		return err
	}
	spent := cpuTime(s.pid) - before
	if fixed.completed == 0 {
		return fmt.Errorf("%s answered nothing at %d qps", s.name, rate)
	}
	perQuery := spent / time.Duration(fixed.completed)
	into.fixedQPS = append(into.fixedQPS, fixed.qps)
	into.cpuPerQuery = append(into.cpuPerQuery, perQuery)
	fmt.Fprintf(os.Stderr, "%-28s %8.0f QPS  %.2f ms  | at %d qps offered: %.0f answered/s, %v CPU per query\n",
		s.name, run.qps, run.latency*1000, rate, fixed.qps, perQuery)
	return nil
}

type perfRun struct {
	qps, latency float64
	completed    int
}

var (
	qpsLine       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latencyLine   = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	completedLine = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	lostLine      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
)

// dnsperf runs dnsperf on dnsperfCore against addr for seconds, offering at
// most rate queries a second (0: as many as it can).
func dnsperf(addr, queries string, seconds, rate int) (perfRun, error) {
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-c", dnsperfCore, "dnsperf", "-s", host, "-p", port, "-d", queries,
		"-l", strconv.Itoa(seconds), "-c", "8", "-T", "1", "-q", "500"}
	if rate > 0 {
		args = append(args, "-Q", strconv.Itoa(rate))
	}
	out, err := exec.Command("taskset", args...).CombinedOutput()
	if err != nil {
		return perfRun{}, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	q, l, c := qpsLine.FindSubmatch(out), latencyLine.FindSubmatch(out), completedLine.FindSubmatch(out)
	if q == nil || l == nil || c == nil {
		return perfRun{}, fmt.Errorf("cannot read dnsperf output:\n%s", out)
	}
	if lost := lostLine.FindSubmatch(out); lost != nil && string(lost[1]) != "0" {
		fmt.Fprintf(os.Stderr, "%s: %s queries lost\n", addr, lost[1])
	}
	var r perfRun
	r.qps, _ = strconv.ParseFloat(string(q[1]), 64)
	r.latency, _ = strconv.ParseFloat(string(l[1]), 64)
	r.completed, _ = strconv.Atoi(string(c[1]))
	return r, nil
}
