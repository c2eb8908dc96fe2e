package resolver

import (
	"encoding/binary"
	"strconv"

	"github.com/kdnsd/kdnsd/dnswire"
)

// The applied index on the DNS port. A query for TXT (or ANY) of
// AppliedIndexName in class CHAOS is answered with one TXT string, the
// decimal index of the View being served ("0" before the first). The chaos
// suite (test/chaos) reads it beside every answer it records, from the same
// socket and with the same latency as the answer itself. Class CHAOS is the
// server-information plane of DNS (as version.bind. and id.server.): no
// Kubernetes object and no forwarded name can be asked there, so the name
// cannot collide with the cluster zone or shadow anything a client resolves,
// and nothing about the index is ever cached or forwarded as data of class IN.
// It discloses only a number; every other CHAOS question stays as before.
const AppliedIndexName = "applied-index.kdnsd."

const classCH = 3

// appliedIndexKey is AppliedIndexName in lower-case wire form.
var appliedIndexKey, _ = dnswire.ParseName(AppliedIndexName)

// isAppliedIndex reports whether q, whose lower-cased wire name is key, asks
// for the applied index.
func isAppliedIndex(q *query, key []byte) bool {
	return q.Qclass == classCH && (q.Qtype == dnswire.TypeTXT || q.Qtype == dnswire.TypeANY) && string(key) == appliedIndexKey
}

// appliedIndex appends the TXT record holding the served View's index to m,
// owned by the question name (compressed to it) with TTL 0.
func (r *Resolver) appliedIndex(m *dnswire.Response) []byte {
	m.Flags |= dnswire.FlagAA
	text := strconv.AppendUint(nil, r.AppliedIndex(), 10)
	b := append(m.Out, 0xc0, dnswire.HeaderLen) // the question name
	b = binary.BigEndian.AppendUint16(b, dnswire.TypeTXT)
	b = binary.BigEndian.AppendUint16(b, classCH)
	b = binary.BigEndian.AppendUint32(b, 0) // never cached
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(text)))
	b = append(b, byte(len(text)))
	m.Out = append(b, text...)
	m.AN = 1
	return m.Done()
}
