// Package dnswire holds the byte-level DNS work of kdnsd's answers: wire
// names, resource records packed ahead of time, and responses written
// straight into a buffer without miekg/dns and without allocating.
//
// # What it owns
//
//   - Names (Name, ParseName, ReverseName): lower-case, uncompressed wire
//     names made of labels that need no escaping, usable as map keys and
//     comparable with a lower-cased question name.
//   - Precomputed sections (Builder, Section): the answer and additional
//     records of a positive response for one owner name and type, packed
//     once, with compression pointers against a question name at offset 12,
//     so that they are valid after any question that names their owner
//     whatever its case. A Section of several A, AAAA or SRV records may be
//     rotated: its answer records point only at the question.
//   - Responses (Response): the header and the OPT record, a Section copied
//     after the question (AppendAnswer, rotating and truncating), and a
//     zone's SOA as the authority of a negative answer (AppendNegative),
//     compressed against the question.
//   - The UDP size cap (UDPLimit, EDNSPayload): a UDP response fits the
//     requester's EDNS payload size, 512 octets without EDNS, and never
//     exceeds 1232 octets (DNS flag day 2020), which responses advertise.
//
// What the records are, and which answer a query gets, is package
// resolver's: this package knows the DNS message format, not the cluster.
package dnswire
