package forward

// Stats are a Forwarder's counters, for metrics. Counters count from New.
type Stats struct {
	// Upstreams are the distinct upstreams, default ones first, in
	// configuration order.
	Upstreams []UpstreamStats
	// CacheHits counts queries answered from a fresh cache entry,
	// CacheMisses those that were not (with the cache disabled, neither
	// counts), StaleServed those answered from an expired entry.
	CacheHits, CacheMisses, StaleServed uint64
	// CacheEntries is the number of cached answers, expired ones kept for
	// serve-stale included.
	CacheEntries int
	// InFlight is the number of queries waiting on upstreams now (at most
	// MaxInFlight); Overloaded counts queries refused for want of a slot.
	InFlight   int
	Overloaded uint64
	// Coalesced counts queries that waited for the answer of an identical
	// query in flight upstream instead of asking themselves.
	Coalesced uint64
	// LoopsDetected counts forwarding loops confirmed (a probe came back,
	// then a fresh one); Looping is true while forwarding is paused for
	// one.
	LoopsDetected uint64
	Looping       bool
}

// UpstreamStats are the counters of one upstream.
type UpstreamStats struct {
	Addr string // ip:port
	// Queries counts attempts (a TCP retry is part of its attempt);
	// Failures the attempts that failed. Health probes count in neither.
	Queries, Failures uint64
	// Healthy is false while the upstream is marked down.
	Healthy bool
}

// Stats returns the current counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{
		Upstreams:     make([]UpstreamStats, len(f.all)),
		CacheHits:     f.hits.Load(),
		CacheMisses:   f.misses.Load(),
		StaleServed:   f.stale.Load(),
		InFlight:      len(f.sem),
		Overloaded:    f.overloaded.Load(),
		Coalesced:     f.flight.joined.Load(),
		LoopsDetected: f.loop.detected.Load(),
		Looping:       f.loop.looping.Load(),
	}
	for i, u := range f.all {
		s.Upstreams[i] = UpstreamStats{
			Addr:     u.addr,
			Queries:  u.queries.Load(),
			Failures: u.failures.Load(),
			Healthy:  !u.down.Load(),
		}
	}
	if f.cache != nil {
		s.CacheEntries = f.cache.len()
	}
	return s
}
