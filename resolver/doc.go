// Package resolver serves DNS for the cluster zone (cluster.local. by
// default) from the record set replicated by package fsm, following the
// Kubernetes DNS-Based Service Discovery specification 1.1.0, and where it
// is silent CoreDNS's kubernetes plugin as the default Kubernetes Corefile
// configures it (pods insecure, fallthrough in-addr.arpa ip6.arpa, ttl 30).
// Names outside the zone are answered by Config.Forward (package forward).
//
// # What it owns
//
// The resolver owns the DNS rules between an immutable fsm.View and the
// bytes on the wire: the translation of services and endpoint slices into
// DNS names and records, the per-View DNS index, and which answer each query
// gets. Package dnswire packs the records and writes the responses; package
// dnsserver runs the UDP and TCP sockets, with the Resolver as its Handler.
//
// # Records
//
// For a zone Z (TTL from Config on every record):
//
//   - <svc>.<ns>.svc.Z: A and AAAA of the cluster IPs of ClusterIP, NodePort
//     and LoadBalancer services (one per family: dual-stack services have
//     both); of every ready endpoint address (not-ready ones too with
//     PublishNotReadyAddresses) of headless services (a headless service
//     without such an address has no name at all: NXDOMAIN, spec 1.1.0
//     section 2.4.1, and nothing below it); CNAME to the external
//     name of ExternalName services, for every type, and nothing else at or
//     below that name. Queries of other types than CNAME and ANY get the
//     target's records after the CNAME (see CNAME chasing below).
//   - <hostname>.<svc>.<ns>.svc.Z, or <a-b-c-d>.<svc>.<ns>.svc.Z for an
//     endpoint without hostname (IPv6: colons become dashes, and a label
//     that would end in a dash ends in 0, fd00-244-6--0 for fd00:244:6::,
//     as CoreDNS names it; one that would start with a dash starts with 0,
//     where CoreDNS keeps the invalid label): A/AAAA of the published
//     endpoints of a headless service.
//   - _<port>._<proto>.<svc>.<ns>.svc.Z: SRV per named port (priority 0,
//     equal weights) with the targets' A/AAAA as additional records. The
//     target is the service name, or for headless services each endpoint's
//     name above with the port number from its endpoint slice.
//   - PTR: <reversed cluster IP>.in-addr.arpa. (nibbles under ip6.arpa. for
//     IPv6) → <svc>.<ns>.svc.Z for every cluster IP; the reversed address of
//     a published headless endpoint → its name above (hostname or dashed
//     address; spec 1.1.0 section 2.4.3). Should two services claim one
//     address, a cluster IP wins over an endpoint, then the smaller name.
//   - <a-b-c-d>.<ns>.pod.Z (IPv6: hyphens for colons; parsed as CoreDNS
//     does: three hyphens and no two in a row make IPv4), by
//     Config.PodMode: "insecure" (default) answers A/AAAA for any well-formed
//     address in any namespace that exists, and pod.Z and <ns>.pod.Z exist
//     without records (NODATA); "verified" answers only the addresses of
//     pods of <ns> (pods that have not terminated, as CoreDNS's verified
//     mode: a pod behind no service is found, an endpoint address that is
//     no pod's is not), and pod.Z and <ns>.pod.Z exist only above such
//     names; "disabled" serves nothing there: pod.Z and everything below it
//     is NXDOMAIN. The namespaces and pods are the View's once it tracks
//     them (fsm.Tracked); until then (a cluster that still writes command
//     format 1, or a leader not in verified mode) any namespace exists, and
//     "verified" answers the endpoint addresses (ready or not) of the
//     services of <ns>, as before pods were replicated.
//   - Z: SOA (serial from the View's index) and NS ns.dns.Z, with the name
//     server's addresses as glue; ns.dns.Z: A/AAAA of Config.NSAddrs, or
//     when empty of the cluster IPs of the service kube-system/kube-dns
//     (the cluster DNS service kubelet points pods at), or none (NODATA);
//     dns-version.Z: TXT "1.1.0", as the specification asks.
//
// A name exists when it has records or names below it: a namespace exists
// (<ns>.svc.Z) when it has at least one service, whatever its type. Names
// that exist without the asked type are NOERROR without answer (NODATA);
// other names in Z are NXDOMAIN; both carry the zone's SOA in the authority
// section, with TTL the smaller of the SOA's TTL and its minimum field
// (both the configured TTL; RFC 2308). ANY gets one RRset (RFC 8482). Names
// are matched case-insensitively, and the question's spelling is echoed in
// every owner name.
//
// Reverse zones are answered authoritatively only for the PTR records above
// (PTR and ANY queries); every other in-addr.arpa. and ip6.arpa. query
// falls through to Config.Forward, as CoreDNS's "fallthrough in-addr.arpa
// ip6.arpa" does, and so do names outside Z. Without Forward they are
// REFUSED.
//
// # CNAME chasing
//
// As CoreDNS's kubernetes plugin does, a query for the name of an
// ExternalName service of any data type but CNAME (ANY is answered by the
// CNAME alone, which matches it; meta and query types are not chased
// either) is answered with the CNAME followed by the records of its target,
// since stub resolvers (glibc, musl) do not follow a CNAME-only answer from
// a server that offers no recursion (RA clear, as here):
//
//   - A target in Z is answered from the index, as if asked, whether or not
//     Forward is set: its records, or another ExternalName's CNAME, whose
//     target is chased in turn. The chain ends at a name seen before (a
//     loop) or after 8 targets, with the CNAMEs so far, NOERROR.
//   - A target outside Z is asked of Config.Forward, through an in-memory
//     ResponseWriter: the same type, RD set, CD as the client's, no EDNS,
//     and a writer whose local address is TCP, so that Forward does not cut
//     its answer; the response is fitted to the client's payload size
//     afterwards (additional records dropped first, then answer records,
//     with TC). Of Forward's answer only the records along the chain from
//     the target are kept (its CNAMEs and the asked type), so an upstream
//     cannot slip in records of other names. Forward gets 2 seconds, under
//     the 5 that stub resolvers wait. Without Forward, a target outside Z
//     is not chased: the CNAME (chain) comes alone.
//   - The response keeps the CNAME answer's header (AA set, RA clear) and
//     takes its rcode from the last name of the chain (RFC 6604): NXDOMAIN
//     for a missing target, with the SOA of that name's zone (Z's, or the
//     one in Forward's negative answer) in the authority section, as for a
//     target without records of the asked type (NOERROR). When Forward
//     fails — no answer in time, or an rcode other than NOERROR and
//     NXDOMAIN — the response is the chain so far, NOERROR (for a service
//     whose external name is outside Z, the CNAME alone, as without Forward):
//     an upstream's trouble is not made the service's SERVFAIL, and the
//     client still learns the target, which it may resolve itself.
//
// The fast path never chases: it hands such queries to the general path,
// which answers chains that stay in Z at once and runs chases that may ask
// Forward on a goroutine of their own, as forwarded queries (when too many
// of those are under way, the CNAME comes alone: Busy). Over TCP,
// and in ServeDNS, the chase runs on the query's goroutine.
//
// Answers with several A, AAAA or SRV records rotate: each response starts
// one record further (round robin, like CoreDNS's loadbalance plugin), from
// an atomic counter per RRset; the precomputed records are copied in that
// order, with no allocation.
//
// # Protocol
//
// UDP responses fit the requester's EDNS payload size (512 octets without
// EDNS), and never exceed 1232 octets, the size advertised in the
// response's OPT record, whatever larger size the requester advertises (DNS
// flag day 2020: no IP fragmentation, and no 60-fold amplification of a
// small query): the additional section is dropped first, without TC; then
// the answer records that fit are kept and TC is set, so that the client
// asks again over TCP. Opcodes other than
// QUERY get NOTIMP; messages that are not exactly one question, or do not
// parse, FORMERR; an unknown EDNS version BADVERS; other classes and zone
// transfers REFUSED. TCP connections may carry several queries, pipelined.
//
// # Serving
//
// Package dnsserver serves a Resolver: TCP through ServeDNS, and UDP through
// a fast path of its own that hands the raw message to AnswerUDP, which
// parses the header, the question and an OPT record (dnswire.ParseQuery) and
// answers from the index into the server's buffer, without allocating.
// Queries it does not take (other opcodes, several questions or records,
// unusual labels or EDNS options, malformed messages), queries to forward
// and CNAME chases take the general path: unpacked by miekg/dns and answered
// by ReplyUDP, or, when the answer may wait on Forward, by ServeDNS on a
// goroutine of its own. Both paths fill the same query description and
// answer it with the same function, so their responses are identical byte
// for byte (tested, and fuzzed); chased answers, which only the general
// path gives, are built with miekg/dns from what that function answers for
// each name of the chain.
//
// # Index
//
// Update builds, once per View, a map from the lower-cased wire-format owner
// name to a node holding that name's RRsets, every RRset stored as the
// finished wire-format answer (and additional) section of a response. The
// sections are compressed against the question name, which always starts at
// offset 12 of a response and has the same length whatever its case, so a
// precomputed section is valid after any question that names its owner.
// Answering is therefore: look the lower-cased question name up, write the
// header and the question as asked (which echoes the client's case), copy the
// precomputed bytes. Owner names equal to the question name are compression
// pointers to the question, so they echo its case too.
//
// Records of a service depend only on the service and its endpoint slices,
// and fsm shares those pointers between Views while they are unchanged, so an
// Update rebuilds only the services whose service or slice pointers changed
// and reuses the rest from the previous index. The map is persistent
// (internal/cowmap, a hash of the name picks one of a few thousand Go maps),
// and fsm's View is too, so an Update finds the changed services by walking
// only the parts of the View that differ from the last one indexed, and
// writes only the parts of the map their names fall in: one service changed
// among 100k costs what that service holds, not what the index holds. Where
// several services claim one name (a PTR record of a shared address, a pod
// name, a namespace's name, or two services whose names differ only in
// case) the index keeps every claim and serves the best (see sharedName),
// so an index built change by change equals one built at once. A new TTL or
// pod mode, which every service's records depend on, rebuilds them all.
// The new index is swapped in through an atomic pointer; queries never lock.
//
// Empty non-terminals (the zone apex, svc.<zone>, <ns>.svc.<zone>,
// _<proto>.<svc>.<ns>.svc.<zone>, dns.<zone>, pod.<zone>) are in the map
// without RRsets, which is what separates NOERROR/NODATA from NXDOMAIN.
// PTR names are in the same map. Pod names are not, unless answered from
// endpoint addresses: they are recognised and answered per query, looked up
// in the View's namespaces and pods (a map lookup each, no allocation), so
// that ten thousand pods add nothing to an index build. Negative answers carry the
// zone's SOA in the authority section, written per query because its owner
// is compressed against the question.
//
// # Before the first View
//
// Until Update has been called once the resolver knows nothing, and answers
// SERVFAIL for names in the zone and in the reverse zones rather than a
// negative answer that clients would cache.
//
// # The cluster's DNS configuration
//
// A View may carry the DNS configuration committed through Raft
// (fsm.DNSConfig, from a ConfigMap): where it sets the TTL or the pod mode,
// they override Config's for the index built from that View, so every
// replica switches at the same log index; its custom records are built into
// the same index and answered like cluster records (custom.go).
package resolver
