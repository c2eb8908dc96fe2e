// Package forward answers every query that is not for the cluster zone: the
// resolver hands it names outside the zone, and reverse names that are not
// cluster IPs, through Config.Forward (a dns.Handler), and a Forwarder
// resolves them through upstream recursive servers.
//
// # What it owns
//
// The Forwarder owns everything between such a query and the upstream
// servers: the choice of upstream (stub domains, health, failover), the
// upstream exchange (UDP, then TCP when the reply is truncated), a cache of
// positive and negative answers with serve-stale (RFC 8767), a bound on
// concurrent upstream queries, the coalescing of identical in-flight queries,
// and the detection of forwarding loops. It owns no listener: the resolver's
// UDP and TCP servers call ServeDNS.
//
// # Upstreams
//
// Config.Upstreams are IP literals with an optional port ("10.0.0.10",
// "10.0.0.10:5353", "[fd00::a]:53", "fd00::a"); host names are not accepted,
// since resolving them would need DNS. When Upstreams is empty the
// nameservers of Config.ResolvConf (/etc/resolv.conf: the node's resolvers
// when the pod runs with dnsPolicy: Default) are used on port 53; its other
// lines (search, domain, options) are ignored, and an invalid nameserver
// line is skipped with a warning, as the C library does. Config.StubDomains
// maps a domain to upstreams of its own, like kube-dns stubDomains: a query
// goes to the upstreams of the longest stub domain that is a suffix of its
// name at a label boundary, or to the default upstreams. An upstream whose
// address is one of Config.LocalAddrs is dropped with an error log, since it
// would be kdnsd asking itself; New fails if that leaves a set empty.
//
// A Forwarder's settings are fixed at New. A Switch (a dns.Handler) holds
// the Forwarder in force and replaces it atomically, which is how kdnsd
// serve applies a DNS configuration committed through Raft (upstreams, stub
// domains, cache size, negative-cache TTL): the replaced Forwarder stops
// its health checks and loop detection, and its cache goes with it.
//
// Each client query tries the upstreams of its set in turn until one gives
// an answer: healthy upstreams first, from a random one on in configured
// order, then those marked down, so that a query is never failed without
// trying every upstream. An attempt fails on a network error, a timeout
// (Config.Timeout per attempt, the TCP retry included), a reply that does
// not match the query, or SERVFAIL or REFUSED; any other reply (NOERROR,
// NXDOMAIN, FORMERR, ...) is the answer. An upstream is marked down after
// MaxFails consecutive failed attempts; once Start has been called, a
// down upstream is probed every Config.HealthCheckInterval with a ". IN NS"
// query until it answers with neither SERVFAIL nor REFUSED, and any answered
// client query marks it healthy too.
//
// Queries sent upstream are built afresh: the client's question, RD and CD
// bits, AD set, and EDNS0 with a payload size of UDPSize octets and the
// client's DO bit; the client's EDNS options are not passed on. A UDP reply
// with TC set is retried over TCP to the same upstream.
//
// # Replies to clients
//
// A reply carries the client's ID, question (so the client's letter case)
// and RD and CD bits; AD only if the client set AD or DO. It has an OPT
// record (payload size UDPSize, the client's DO bit) if and only if the
// query had one. Over UDP it is cut to the client's EDNS payload size
// (512 octets without EDNS, at most UDPSize) by dns.Msg.Truncate, which sets
// TC when records had to be dropped. Queries with other than one question
// get FORMERR, other opcodes NOTIMP, an EDNS version other than 0 BADVERS,
// and zone transfers (AXFR, IXFR) REFUSED. When every upstream failed, the
// client gets a stale answer if there is one (below), else the last SERVFAIL
// or REFUSED reply of an upstream (or a truncated one, emptied, if the TCP
// retry failed: the client retries over TCP), else SERVFAIL.
//
// # Cache
//
// Answers are cached by lower-cased name, type, class and the DO, CD and RD
// bits of the query, in a cache of Config.CacheSize entries (10000 by
// default; a negative size disables caching), sharded by name with a
// least-recently-used list per shard. NOERROR
// replies with answers are kept for the smallest TTL of their answer and
// authority records, at most Config.MaxTTL (1h by default). Negative replies
// (NXDOMAIN, and NOERROR without answer) are kept for the smaller of the TTL
// and the minimum field of the SOA in their authority section, at most
// Config.MaxNegativeTTL (5m by default), and not at all without a SOA
// (RFC 2308). Replies with a TTL of 0, truncated replies, and every other
// rcode (SERVFAIL above all) are not cached. Every record TTL of a
// cacheable reply is cut to the entry's TTL, in the reply passed on from
// the upstream too (so clients never hold an answer longer than kdnsd
// would), and decremented by the entry's age when served from the cache.
//
// Serve-stale (RFC 8767): an entry is kept Config.ServeStale (1h by default;
// negative disables) past its expiry, and served, with every TTL set to
// StaleTTL (30 seconds) and, for EDNS clients, Extended DNS Error 3 (Stale
// Answer), when every upstream failed for the query or the MaxInFlight bound
// was reached. Upstreams are always asked first: a stale entry is never
// served while an upstream answers.
//
// # Load
//
// At most Config.MaxInFlight (1000 by default) client queries wait on
// upstreams at once. A query beyond the bound is not queued: it is answered
// at once from a stale entry if there is one, else with SERVFAIL (the server
// could not complete the query; clients retry, and SERVFAIL is what they
// get from an overloaded upstream too), and counted in Stats.Overloaded.
// Identical queries (same cache key) while one is in flight upstream wait
// for its answer instead of asking again, take no slot of their own, and
// are counted in Stats.Coalesced. This also keeps a query that circles
// through a forwarding loop from multiplying: when it comes back, it waits
// for itself until the first attempt times out.
//
// # Forwarding loops
//
// If an upstream sends queries back to kdnsd (the node's resolv.conf names
// the cluster DNS service, or a node-local cache forwards to it), every
// forwarded query would circle until it times out, multiplying load.
// Start therefore sends each upstream one query for a random name below
// "kdnsd-loop-detect." (retried a few times if the upstream does not
// answer), like CoreDNS's loop plugin. The probe counts as come back only
// if ServeDNS gets its name while the probe's query to the upstream waits
// for the reply (at most Config.Timeout): in a loop the upstream cannot
// answer before the query it passed on has come round, so a probe that
// loops comes back in that window, on the upstream's reply path. The name
// travels in clear, so a probe that came back is confirmed with a fresh one
// before anything changes: a probe name replayed by someone who saw it on
// the wire pauses nothing (outside the window it is forwarded like any
// name); to pause forwarding, two probes must come back within their
// windows, the second under a name that only the path to the upstream has
// seen. (The source address of the returning
// query is not checked: in the loops met in practice it is a peer replica's,
// a node's or a node-local cache's, not the upstream's.) A probe that came
// back is answered SERVFAIL, so that it goes no further round.
//
// Once both probes came back, the Forwarder logs an error naming the
// upstream and pauses forwarding for LoopHold: names outside the zone are
// answered from the cache (fresh entries, then stale ones as when every
// upstream fails), else SERVFAIL, without asking upstreams; Stats.Looping is
// true meanwhile. The first query to forward after LoopHold has every
// upstream probed again, the pause lasting until they are: forwarding
// resumes (with an info log) when none loops, else pauses for another
// LoopHold. Probe names of other replicas are forwarded like any name, so
// that in a loop through the cluster service they come round to the replica
// that sent them. Start should be called once the DNS listeners serve, or a
// looped probe finds no one to come back to.
//
// An operator who sees the loop error must point kdnsd at resolvers that do
// not lead back to the cluster DNS: fix the upstream flags or stub domains,
// or the resolv.conf that kdnsd reads (the kubelet's --resolv-conf on the
// node, which must not name the cluster DNS service IP, nor a local stub
// such as systemd-resolved's 127.0.0.53 that is unreachable from the pod),
// and check that no node-local cache forwards names outside the cluster
// zone back to the cluster DNS service. kdnsd resumes forwarding by itself
// at the first probes after the fix (within LoopHold).
package forward
