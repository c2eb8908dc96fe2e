package main

import (
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/forward"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
	"github.com/kdnsd/kdnsd/resolver"
	"github.com/kdnsd/kdnsd/watcher"
)

// metrics registers what /metrics exposes: the process, the replica's
// place in the Raft group, the queries and the programming latency
// (served), and the forwarder's counters (read once a scrape).
func metrics(node *raftnode.Node, res *resolver.Resolver, served *servingMetrics, fwd *forward.Switch, cw *watcher.ConfigWatcher) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		served.programming,
		served.eventToCommit,
		dnsCollector{served.dns},
		goCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kdnsd_served_index", Help: "Raft log index of the records this replica answers from."},
			func() float64 { return float64(res.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kdnsd_raft_leader", Help: "1 while this replica leads the Raft group."},
			func() float64 { return boolValue(node.IsLeader()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kdnsd_fsm_apply_blocked", Help: "1 once this replica stopped applying the Raft log at an entry its build cannot decode (see /readyz)."},
			func() float64 { return boolValue(node.ApplyBlocked() != nil) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kdnsd_fsm_apply_blocked_index", Help: "Raft log index of the entry this replica stopped applying at; 0 while it applies."},
			func() float64 {
				if b := node.ApplyBlocked(); b != nil {
					return float64(b.Index)
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kdnsd_max_command_version", Help: "Newest Raft log command format this replica's build decodes."},
			func() float64 { return float64(fsm.MaxCommandVersion) }),
		forwardCollector{fwd},
		raftRejectedCollector{node},
	)
	if cw != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kdnsd_config_rejections_total",
			Help: "DNS configurations (ConfigMap versions) this replica refused while leading; the last good one stayed in force."},
			func() float64 { return float64(cw.Rejections()) }))
	}
	return reg
}

// servingMetrics are measured along the way of a query and of a change: the
// DNS servers count the queries (dnsserver.Config.Counters), the leader's
// watcher reports each change it committed (watcher.Config.Committed), and
// the resolver each View it starts answering from (resolver.Config.Served).
type servingMetrics struct {
	dns           *dnsserver.Counters
	eventToCommit prometheus.Histogram
	programming   prometheus.Histogram
}

func newServingMetrics() *servingMetrics {
	return &servingMetrics{
		dns: new(dnsserver.Counters),
		eventToCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kdnsd_watcher_event_to_commit_seconds",
			Help: "On the leader: time from an informer event reporting a change of a Service, EndpointSlice, Namespace or Pod " +
				"to the commit of the Raft entry that carries it (the part of the programming latency before the leader's append, and the append).",
			Buckets: programmingBuckets,
		}),
		programming: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kdnsd_dns_programming_duration_seconds",
			Help: "Time from the Raft leader appending an entry to its log to this replica answering queries from the index that includes it, " +
				"once per index served, for its last entry. Measured against the leader's clock: the clock skew between the leader and this replica " +
				"adds to it or takes from it (less than zero counts as zero).",
			Buckets: programmingBuckets,
		}),
	}
}

// programmingBuckets: 1 ms to 10 s.
var programmingBuckets = prometheus.ExponentialBucketsRange(0.001, 10, 17)

// committed observes how long a change waited from its informer event to
// its commit (watcher.Config.Committed).
func (m *servingMetrics) committed(waited time.Duration) { m.eventToCommit.Observe(waited.Seconds()) }

// served observes the programming latency of v, the View the resolver
// now answers from: until now since the leader appended v's last entry.
// Views loaded from the store's file or a snapshot have no such time.
//
// The leader's clock stamped the entry (raft.Log.AppendedAt): on a
// follower whose clock is behind the leader's, the latency comes out short
// by the difference, and is counted as zero when that makes it negative;
// on one whose clock is ahead, long by the difference. Run NTP (or
// chrony) on the nodes: skew of a few milliseconds is what it keeps to.
// One observation per View: entries applied in one batch before its last,
// and Views the resolver skipped for a newer one, waited a little longer
// than what is observed.
func (m *servingMetrics) served(v *fsm.View) {
	if t := v.AppendedAt(); !t.IsZero() {
		m.programming.Observe(max(0, time.Since(t).Seconds()))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	descUpstreamQueries  = prometheus.NewDesc("kdnsd_forward_upstream_queries_total", "Queries sent to an upstream server.", []string{"upstream"}, nil)
	descUpstreamFailures = prometheus.NewDesc("kdnsd_forward_upstream_failures_total", "Queries to an upstream server that failed.", []string{"upstream"}, nil)
	descUpstreamHealthy  = prometheus.NewDesc("kdnsd_forward_upstream_healthy", "1 while an upstream server is considered healthy.", []string{"upstream"}, nil)
	descCacheHits        = prometheus.NewDesc("kdnsd_forward_cache_hits_total", "Forwarded names answered from the cache.", nil, nil)
	descCacheMisses      = prometheus.NewDesc("kdnsd_forward_cache_misses_total", "Forwarded names not in the cache.", nil, nil)
	descStaleServed      = prometheus.NewDesc("kdnsd_forward_stale_served_total", "Expired answers served because every upstream failed (RFC 8767).", nil, nil)
	descCacheEntries     = prometheus.NewDesc("kdnsd_forward_cache_entries", "Answers in the cache, stale ones included.", nil, nil)
	descInFlight         = prometheus.NewDesc("kdnsd_forward_in_flight", "Upstream queries in flight.", nil, nil)
	descOverloaded       = prometheus.NewDesc("kdnsd_forward_overloaded_total", "Queries refused because --max-inflight was reached.", nil, nil)
	descLooping          = prometheus.NewDesc("kdnsd_forward_loop_detected", "1 while forwarding is paused because a forwarding loop was confirmed; the upstreams are probed again after a minute.", nil, nil)
)

// forwardCollector exposes forward.Stats.
type forwardCollector struct{ fwd *forward.Switch }

func (c forwardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUpstreamQueries, descUpstreamFailures, descUpstreamHealthy, descCacheHits,
		descCacheMisses, descStaleServed, descCacheEntries, descInFlight, descOverloaded, descLooping} {
		ch <- d
	}
}

func (c forwardCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.fwd.Current().Stats()
	for _, u := range st.Upstreams {
		ch <- prometheus.MustNewConstMetric(descUpstreamQueries, prometheus.CounterValue, float64(u.Queries), u.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamFailures, prometheus.CounterValue, float64(u.Failures), u.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamHealthy, prometheus.GaugeValue, boolValue(u.Healthy), u.Addr)
	}
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(st.CacheHits))
	ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(st.CacheMisses))
	ch <- prometheus.MustNewConstMetric(descStaleServed, prometheus.CounterValue, float64(st.StaleServed))
	ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(st.CacheEntries))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(descOverloaded, prometheus.CounterValue, float64(st.Overloaded))
	ch <- prometheus.MustNewConstMetric(descLooping, prometheus.GaugeValue, boolValue(st.Looping))
}

var descRaftRejected = prometheus.NewDesc("kdnsd_raft_rpc_rejected_total",
	"Raft RPCs refused before reaching Raft: identity (the claimed server ID or address is not the one the peer's certificate names) or not_admitted (a vote asked of, or by, a replica not yet admitted to vote).",
	[]string{"reason"}, nil)

// raftRejectedCollector exposes raftnode.Node.RejectedRPCs.
type raftRejectedCollector struct{ node *raftnode.Node }

func (c raftRejectedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descRaftRejected }

func (c raftRejectedCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.node.RejectedRPCs() {
		ch <- prometheus.MustNewConstMetric(descRaftRejected, prometheus.CounterValue, float64(n), reason)
	}
}

var (
	descDNSRequests  = prometheus.NewDesc("kdnsd_dns_requests_total", "DNS queries read, by question type and transport.", []string{"type", "transport"}, nil)
	descDNSResponses = prometheus.NewDesc("kdnsd_dns_responses_total", "DNS responses written, by rcode and transport.", []string{"rcode", "transport"}, nil)
	descDNSUDPPath   = prometheus.NewDesc("kdnsd_dns_udp_requests_by_path_total",
		"UDP queries by the path that answered them: fast (written from the raw query without allocating) or general (unpacked by miekg/dns; forwarded queries included).",
		[]string{"path"}, nil)
)

// dnsCollector exposes dnsserver.Counters, summed at each scrape.
type dnsCollector struct{ c *dnsserver.Counters }

func (c dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDNSRequests
	ch <- descDNSResponses
	ch <- descDNSUDPPath
}

func (c dnsCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.c.Counts()
	for t, transport := range dnsserver.Transports {
		for i, typ := range dnsserver.QueryTypes {
			ch <- prometheus.MustNewConstMetric(descDNSRequests, prometheus.CounterValue, float64(n.Requests[t][i]), typ, transport)
		}
		for i, rcode := range dnsserver.Rcodes {
			ch <- prometheus.MustNewConstMetric(descDNSResponses, prometheus.CounterValue, float64(n.Responses[t][i]), rcode, transport)
		}
	}
	ch <- prometheus.MustNewConstMetric(descDNSUDPPath, prometheus.CounterValue, float64(n.FastPath), "fast")
	ch <- prometheus.MustNewConstMetric(descDNSUDPPath, prometheus.CounterValue, float64(n.GeneralPath), "general")
}

// goCollector is the Go runtime's metrics: the default set and
// go_gc_heap_live_bytes, the heap its last collection found live. The
// memstats gauges count garbage not yet swept; the live heap is what to
// size a replica's memory limit from (with GOGC's headroom above it).
func goCollector() prometheus.Collector {
	return collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}))
}
