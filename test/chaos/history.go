// Package chaos is kdnsd's chaos suite: real kdnsd replicas (the
// multi-process harness of test/cluster), each in a network namespace of its
// own inside a private one the suite creates, or with -chaos.node the pods of
// deploy/statefulset on the real node of test/e2e (site_test.go), a real kube-apiserver, a
// steady stream of writes through it and of UDP queries to every replica,
// and faults (kill -9, SIGSTOP, iptables partitions, API server outages,
// wiped data, restarts, scaling, a throttled disk). Everything that happens
// is recorded in a History; Check judges a History against the properties
// cluster DNS must keep (availability, no phantom, monotonic reads, bounded
// staleness, convergence, failover), and the report (CHAOS.md or
// CHAOS-5.md, chaos.json, one PNG timeline per scenario) shows the figures. The scenarios run only with
// -chaos (make chaos, make chaos-short, make chaos-node); the checker's own
// tests always run.
package chaos

import (
	"slices"
	"strings"
	"time"
)

// Workload rates. Writes are ~20 API requests a second; every replica gets
// readRate probes a second, each an applied-index question and a name
// question on one socket.
const (
	writeInterval = 50 * time.Millisecond
	readRate      = 100
	queryTimeout  = time.Second
	// liveObjects is how many objects the writer keeps in flight.
	liveObjects = 15
	// sliceUpdates is how many times each object's address changes.
	sliceUpdates = 3
	neverNames   = 10
)

// History is everything one scenario recorded. Times are wall-clock; the
// suite and the replicas run on one machine.
type History struct {
	Scenario string
	Voters   int
	Replicas []string
	Start    time.Time
	End      time.Time
	// Fault is when the fault was injected, Heal when it was undone (the
	// partition removed, the process continued or restarted, the API
	// server started again).
	Fault, Heal time.Time
	// LeaderFaulted says the fault hit the replica that led at Fault, so a
	// new leader must be elected; FaultedLeaderTerm is the term it led in.
	LeaderFaulted     bool
	FaultedLeaderTerm uint64
	Writes            []Write
	Answers           []Answer
	Leaders           []LeaderSample
	// Down are the intervals in which a replica is not expected to answer
	// (killed, stopped, starting up, wiped and empty). Lagging are those in
	// which it answers but is cut off from the majority or catching up
	// after it (partitioned, just restarted): its staleness is reported
	// apart and not held to the bound.
	Down    []Interval // Why WhyWiped: the replica's data was wiped at From
	Lagging []Interval
	// APIDown are the intervals in which the API server could not be read
	// (from its stop until it is ready again). Staleness does not count
	// them: no replica can learn what the API cannot tell.
	APIDown []Interval
	Events  []Event
	// Marker is the name of the write made right after the fault;
	// MarkerAnswered is when each replica expected to answer it first did.
	Marker         string
	MarkerAnswered map[string]time.Time
	// MarkerFrom is when the marker's clock starts: the fault, or in an
	// API server outage the moment the API first accepted the marker's
	// write (no write can be made before it; the checker starts it at the
	// outage's end (APIDown) when that is later), or that moment too after
	// a fault that lasts until the marker is written (a rolling restart).
	MarkerFrom time.Time
	// MarkerExpected lists the replicas that had to answer the marker: the
	// live ones connected to the majority.
	MarkerExpected []string
	// WritesStopped is when the writer stopped; Final the API's state then
	// (name → observable); Converged when each replica first answered every
	// name as in Final (absent: not within the wait).
	WritesStopped time.Time
	Final         map[string]string
	Converged     map[string]time.Time
	// Removed lists the replicas the scenario took out of the cluster
	// (scaled down): they are not expected to converge.
	Removed []string
}

// Write is one API request of the workload.
type Write struct {
	Name  string // the DNS name the object is published under
	Op    string // one of the Op constants
	Addr  string // the slice's address after the write (create/update slice)
	Sent  time.Time
	Acked time.Time // zero when the request failed
	// Err is why it failed. Refused: the API server refused the
	// connection, so the write certainly did not happen; any other error
	// leaves the API's state unknown.
	Err     string
	Refused bool
}

// Operations of the workload. An object is an EndpointSlice with one
// address, created before and deleted after its headless Service, so that
// the name it publishes goes absent → address → … → absent.
const (
	OpCreateSlice   = "create-slice"
	OpCreateService = "create-service"
	OpUpdateSlice   = "update-slice"
	OpDeleteService = "delete-service"
	OpDeleteSlice   = "delete-slice"
)

// Answer is one UDP query and what came of it.
type Answer struct {
	Replica string
	Name    string
	Sent    time.Time
	At      time.Time // when the answer came, or the query gave up
	Rcode   int       // -1: no answer (Err says why)
	Err     string
	Addrs   []string // A records, sorted
	// Index is the applied index the replica reported on the same socket
	// just before (sent at IndexSent, answered at IndexAt); 0 when it
	// served no View or did not answer.
	Index     uint64
	IndexSent time.Time
	IndexAt   time.Time
}

// Observable forms.
const (
	ObsAbsent = "NXDOMAIN"
	ObsNoData = "NODATA"
)

// Observable is what an answer says about its name: ObsAbsent, ObsNoData,
// or the sorted addresses joined by commas; "" for no usable answer
// (timeout, SERVFAIL, …).
func (a Answer) Observable() string {
	switch {
	case a.Rcode == 3:
		return ObsAbsent
	case a.Rcode != 0:
		return ""
	case len(a.Addrs) == 0:
		return ObsNoData
	}
	return strings.Join(a.Addrs, ",")
}

// Answered reports whether the replica gave an answer a client can use:
// NOERROR or NXDOMAIN.
func (a Answer) Answered() bool { return a.Rcode == 0 || a.Rcode == 3 }

// LeaderSample is one replica's /status as polled.
type LeaderSample struct {
	At      time.Time
	Replica string
	State   string
	Term    uint64
}

// Interval is a span of one replica's time.
type Interval struct {
	Replica  string
	From, To time.Time
	Why      string
}

func (iv Interval) contains(t time.Time) bool { return !t.Before(iv.From) && t.Before(iv.To) }

// Event is an action of the scenario, for the report and the timeline.
type Event struct {
	At   time.Time
	What string
}

// in reports whether replica r is in one of ivs at t.
func in(ivs []Interval, r string, t time.Time) bool {
	return slices.ContainsFunc(ivs, func(iv Interval) bool { return iv.Replica == r && iv.contains(t) })
}

// WhyWiped is the Why of a Down interval that began with the replica's data
// wiped: the checker holds it to monotonic answers only from then on.
const WhyWiped = "wiped"
