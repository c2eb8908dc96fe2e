// Package resolver serves DNS for the cluster zone (cluster.local. by
// default) from the record set replicated by package fsm, following the
// Kubernetes DNS-Based Service Discovery specification 1.1.0. Forwarding of
// names outside the zone comes later; Config.Forward is the seam for it.
//
// # What it owns
//
// The resolver owns everything between an immutable fsm.View and the bytes on
// the wire: the translation of services and endpoint slices into DNS names
// and records, the per-View DNS index, and the UDP and TCP listeners.
//
// # Records
//
// For a zone Z (TTL from Config on every record):
//
//   - <svc>.<ns>.svc.Z: A and AAAA of the cluster IPs of ClusterIP, NodePort
//     and LoadBalancer services; of every ready endpoint address (not-ready
//     ones too with PublishNotReadyAddresses) of headless services; CNAME to
//     the external name of ExternalName services.
//   - <hostname>.<svc>.<ns>.svc.Z, or <a-b-c-d>.<svc>.<ns>.svc.Z for an
//     endpoint without hostname (IPv6: colons become dashes): A/AAAA of the
//     published endpoints of a headless service.
//   - _<port>._<proto>.<svc>.<ns>.svc.Z: SRV per named port (priority 0,
//     equal weights) with the targets' A/AAAA as additional records. The
//     target is the service name, or for headless services each endpoint's
//     name above with the port number from its endpoint slice.
//   - Z: SOA (serial from the View's index) and NS ns.dns.Z;
//     dns-version.Z: TXT "1.1.0", as the specification asks.
//
// Other names in Z are NXDOMAIN, names without the asked type NOERROR
// without answer; both carry the SOA in the authority section. ANY gets one
// RRset (RFC 8482). Names outside Z, reverse (PTR) names included, are
// REFUSED, or handed to Config.Forward when set. Pod records (pod.Z) are not
// served yet.
//
// # Protocol
//
// UDP responses fit the requester's EDNS payload size (512 octets without
// EDNS, at most 4096): the additional section is dropped first, without TC;
// then the answer records that fit are kept and TC is set. Opcodes other than
// QUERY get NOTIMP; messages that are not exactly one question, or do not
// parse, FORMERR; an unknown EDNS version BADVERS; other classes and zone
// transfers REFUSED.
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
// and reuses the rest from the previous index. The new index is swapped in
// through an atomic pointer; queries never lock.
//
// Empty non-terminals (the zone apex, svc.<zone>, <ns>.svc.<zone>,
// _<proto>.<svc>.<ns>.svc.<zone>) are in the map without RRsets, which is
// what separates NOERROR/NODATA from NXDOMAIN. Negative answers carry the
// zone's SOA in the authority section, written per query because its owner
// is compressed against the question.
//
// # Before the first View
//
// Until Update has been called once the resolver knows nothing, and answers
// SERVFAIL for names in the zone rather than a negative answer that clients
// would cache.
package resolver
