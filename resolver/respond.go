package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// Header bits.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4
)

// EDNS limits. A UDP response honours the requester's advertised payload
// size, at least 512 octets (RFC 6891 section 6.2.5) and at most
// maxUDPPayload. The resolver advertises ednsPayload, the size DNS Flag Day
// 2020 recommends, as what it accepts.
const (
	maxUDPPayload = 4096
	ednsPayload   = 1232
	minUDPPayload = 512
)

// action says what ServeDNS does with a query after reply.
type action int

const (
	actDrop    action = iota // send nothing
	actAnswer                // send reply's bytes
	actForward               // hand the query to Config.Forward
)

// response is a reply being written into out, whose first 12 octets are the
// header, filled in by done.
type response struct {
	out         []byte
	id, flags   uint16
	rcode       int
	qd, an, ns  uint16
	ar          uint16
	edns, do    bool
	ednsVersion uint8
}

// done fills in the header, appends the OPT record if the query had one, and
// returns the message.
func (m *response) done() []byte {
	b := m.out
	ar := m.ar
	if m.edns {
		ar++
		b = append(b, 0, // root
			0, typeOPT,
			byte(ednsPayload>>8), byte(ednsPayload&0xff),
			byte(m.rcode>>4), 0, // extended RCODE, version 0
			0, 0, // flags
			0, 0) // no options
		if m.do {
			b[len(b)-4] = 0x80 // echo DO (RFC 3225)
		}
	}
	binary.BigEndian.PutUint16(b[0:], m.id)
	binary.BigEndian.PutUint16(b[2:], m.flags|uint16(m.rcode&0xf))
	binary.BigEndian.PutUint16(b[4:], m.qd)
	binary.BigEndian.PutUint16(b[6:], m.an)
	binary.BigEndian.PutUint16(b[8:], m.ns)
	binary.BigEndian.PutUint16(b[10:], ar)
	return b
}

// reply writes the response to req into out and says what to do with it.
// tcp tells whether the response may be as large as a TCP message.
func (r *Resolver) reply(out []byte, req *dns.Msg, tcp bool) ([]byte, action) {
	const room = headerLen + maxNameLen + 4
	if cap(out) < room {
		out = make([]byte, 0, 512)
	}
	m := response{out: out[:headerLen], id: req.Id, flags: flagQR | uint16(req.Opcode&0xf)<<11}
	if req.RecursionDesired {
		m.flags |= flagRD
	}
	if req.CheckingDisabled {
		m.flags |= flagCD
	}

	var opt *dns.OPT
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil { // RFC 6891 section 6.1.1
				m.rcode = dns.RcodeFormatError
				return m.done(), actAnswer
			}
			opt = o
		}
	}
	limit := minUDPPayload
	if opt != nil {
		m.edns, m.do = true, opt.Do()
		limit = min(max(int(opt.UDPSize()), minUDPPayload), maxUDPPayload)
	}
	if tcp {
		limit = maxMsgLen
	}

	if req.Opcode != dns.OpcodeQuery {
		m.rcode = dns.RcodeNotImplemented
		return m.done(), actAnswer
	}
	if len(req.Question) != 1 {
		m.rcode = dns.RcodeFormatError
		return m.done(), actAnswer
	}
	q := &req.Question[0]
	end, err := dns.PackDomainName(q.Name, m.out[:room], headerLen, nil, false)
	if err != nil || end <= headerLen || end > headerLen+maxNameLen {
		m.rcode = dns.RcodeFormatError
		return m.done(), actAnswer
	}
	qname := m.out[headerLen:end]
	m.out = binary.BigEndian.AppendUint16(m.out[:end], q.Qtype)
	m.out = binary.BigEndian.AppendUint16(m.out, q.Qclass)
	m.qd = 1

	if opt != nil && opt.Version() != 0 {
		m.rcode = dns.RcodeBadVers
		return m.done(), actAnswer
	}

	// The lower-cased question name, and whether it is in the zone: the
	// zone's wire name must be its suffix at a label boundary.
	var lbuf [maxNameLen]byte
	key := lbuf[:len(qname)]
	for i, c := range qname {
		key[i] = lower(c)
	}
	inZone := false
	for i := 0; i < len(key); i += 1 + int(key[i]) {
		if len(key)-i == len(r.zone) {
			inZone = string(key[i:]) == r.zone
			break
		}
		if key[i] == 0 || len(key)-i < len(r.zone) {
			break
		}
	}
	if !inZone {
		if r.forward != nil {
			return nil, actForward
		}
		m.rcode = dns.RcodeRefused
		return m.done(), actAnswer
	}
	if q.Qclass != dns.ClassINET {
		m.rcode = dns.RcodeRefused
		return m.done(), actAnswer
	}
	if q.Qtype == typeAXFR || q.Qtype == typeIXFR {
		m.rcode = dns.RcodeRefused // no zone transfers (RFC 5936 section 4.2)
		return m.done(), actAnswer
	}
	ix := r.idx.Load()
	if ix == nil {
		m.rcode = dns.RcodeServerFailure // no View yet
		return m.done(), actAnswer
	}

	m.flags |= flagAA
	n := ix.nodes[string(key)]
	if n == nil {
		m.rcode = dns.RcodeNameError
		r.negative(&m, ix, len(qname))
		return m.done(), actAnswer
	}
	sec := n.cname
	if sec == nil {
		if q.Qtype == typeANY {
			// RFC 8482: answer ANY with one RRset.
			if len(n.sets) > 0 {
				sec = n.sets[0].sec
			}
		} else {
			sec = n.set(q.Qtype)
		}
	}
	if sec == nil {
		r.negative(&m, ix, len(qname))
		return m.done(), actAnswer
	}

	// Everything if it fits; else without the additional section, which
	// needs no TC (RFC 2181 section 9); else the answer records that fit,
	// with TC.
	space := limit - len(m.out)
	if m.edns {
		space -= optLen
	}
	an := sec.anLen()
	switch {
	case len(sec.wire) <= space:
		m.out = append(m.out, sec.wire...)
		m.an, m.ar = uint16(len(sec.anEnd)), sec.ar
	case an <= space:
		m.out = append(m.out, sec.wire[:an]...)
		m.an = uint16(len(sec.anEnd))
	default:
		k := 0
		for k < len(sec.anEnd) && int(sec.anEnd[k]) <= space {
			k++
		}
		if k > 0 {
			m.out = append(m.out, sec.wire[:sec.anEnd[k-1]]...)
		}
		m.an = uint16(k)
		m.flags |= flagTC
	}
	return m.done(), actAnswer
}

// negative appends the zone's SOA as the authority of a negative answer.
// Its owner, and the suffix of its two names, point at the zone in the
// question.
func (r *Resolver) negative(m *response, ix *index, qlen int) {
	zoneOff := headerLen + qlen - len(r.zone)
	ptr := [2]byte{0xc0 | byte(zoneOff>>8), byte(zoneOff)}
	b := append(m.out, ptr[0], ptr[1])
	b = binary.BigEndian.AppendUint16(b, typeSOA)
	b = binary.BigEndian.AppendUint16(b, classIN)
	b = binary.BigEndian.AppendUint32(b, ix.soa.ttl)
	rd := len(b) + 2
	b = append(b, 0, 0)
	b = append(b, r.mname[:len(r.mname)-len(r.zone)]...)
	b = append(b, ptr[0], ptr[1])
	b = append(b, r.rname[:len(r.rname)-len(r.zone)]...)
	b = append(b, ptr[0], ptr[1])
	b = ix.soa.appendNumbers(b)
	binary.BigEndian.PutUint16(b[rd-2:], uint16(len(b)-rd))
	m.out = b
	m.ns = 1
}
