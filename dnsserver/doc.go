// Package dnsserver runs kdnsd's DNS sockets: it serves a Handler (a
// *resolver.Resolver) over UDP and TCP on one address, and knows nothing of
// what the answers say.
//
// # What it owns
//
//   - The sockets (Listen): the TCP listener and the UDP sockets of one
//     address, port 0 picking a port free for both; on Linux, GOMAXPROCS
//     UDP sockets share the address (SO_REUSEPORT), the kernel spreading
//     queries over them.
//   - TCP (Serve): miekg/dns's server, through Handler.ServeDNS, with
//     AcceptQuery as its header check; connections may carry several
//     queries, pipelined.
//   - The UDP loop (udp.go, batch_linux.go): one goroutine per socket reads
//     queries and writes answers, on Linux in batches (recvmmsg, sendmmsg:
//     one system call for every query waiting, up to 32), into buffers of
//     its own, without allocating. It drops responses and datagrams shorter
//     than a header, hands the raw message to Handler.AnswerUDP (the fast
//     path), and the rest to the general path: header check, unpacking by
//     miekg/dns, Handler.ReplyUDP; a query whose answer may wait on an
//     upstream is answered by Handler.ServeDNS on a goroutine of its own,
//     at most 4096 at once per address (Handler.Busy answers beyond).
//   - Source addresses: on a socket of the unspecified address, each answer
//     leaves from the address its query was sent to (IP_PKTINFO,
//     IPV6_PKTINFO), which a client's connected socket requires.
//   - Counting (counters.go): queries by question type and transport,
//     responses by rcode, UDP queries by the path that answered them, into
//     Config.Counters. Each UDP reader counts into a block of counters of
//     its own, padded to whole cache-line pairs, so that the fast path
//     never writes a line another core writes; TCP connections share one
//     block, as do the answers to forwarded UDP queries. Counters.Counts
//     sums the blocks when asked (at scrape time).
//   - Shutdown: when ctx is done, both servers stop; TCP connections and
//     queries being answered by ServeDNS get 5 seconds to finish.
//
// Config.NoBatch and Config.MiekgUDP swap the UDP loop for one system call
// per datagram, or for miekg/dns's server, so that tests and TestDNSPerf
// can compare them.
package dnsserver
