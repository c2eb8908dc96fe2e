package dnswire

import "encoding/binary"

// Header bits.
const (
	FlagQR = 1 << 15
	FlagAA = 1 << 10
	FlagTC = 1 << 9
	FlagRD = 1 << 8
	FlagCD = 1 << 4
)

// EDNS limits. A UDP response honours the requester's advertised payload
// size, at least 512 octets (RFC 6891 section 6.2.5), but is never larger
// than EDNSPayload, the size DNS flag day 2020 recommends, whatever larger
// size the requester advertises: a larger datagram may be fragmented, and
// fragments get lost or spoofed (RFC 8900), and a small query would get an
// answer up to 60 times its size, which makes an amplifier for attacks on a
// forged source address. A larger answer is truncated, and the client asks
// again over TCP. Responses also advertise EDNSPayload as what the server
// accepts.
const (
	EDNSPayload   = 1232
	MinUDPPayload = 512
)

// UDPLimit returns the largest UDP response to a query, with an EDNS record
// advertising size or (edns false) without one.
func UDPLimit(edns bool, size uint16) int {
	if !edns {
		return MinUDPPayload
	}
	return min(max(int(size), MinUDPPayload), EDNSPayload)
}

// ResponseFlags returns the flags of a response to a request with bits.
func ResponseFlags(bits uint16) uint16 {
	return FlagQR | bits&(0xf<<11|FlagRD|FlagCD)
}

// Response is a reply being written into Out, whose first 12 octets are the
// header, filled in by Done.
type Response struct {
	Out        []byte
	ID, Flags  uint16
	Rcode      int
	QD, AN, NS uint16
	AR         uint16
	// EDNS: the query had an OPT record, so the response gets one, with DO
	// echoed.
	EDNS, DO bool
}

// Done fills in the header, appends the OPT record if the query had one, and
// returns the message.
func (m *Response) Done() []byte {
	b := m.Out
	ar := m.AR
	if m.EDNS {
		ar++
		b = append(b, 0, // root
			0, TypeOPT,
			byte(EDNSPayload>>8), byte(EDNSPayload&0xff),
			byte(m.Rcode>>4), 0, // extended RCODE, version 0
			0, 0, // flags
			0, 0) // no options
		if m.DO {
			b[len(b)-4] = 0x80 // echo DO (RFC 3225)
		}
	}
	binary.BigEndian.PutUint16(b[0:], m.ID)
	binary.BigEndian.PutUint16(b[2:], m.Flags|uint16(m.Rcode&0xf))
	binary.BigEndian.PutUint16(b[4:], m.QD)
	binary.BigEndian.PutUint16(b[6:], m.AN)
	binary.BigEndian.PutUint16(b[8:], m.NS)
	binary.BigEndian.PutUint16(b[10:], ar)
	return b
}

// MinOut is the capacity a response buffer needs for everything but the
// records: header, question, the SOA of a negative answer and OPT.
const MinOut = 512

// AppendAnswer appends the records of sec: everything if it fits in limit;
// else without the additional section, which needs no TC (RFC 2181 section
// 9); else the answer records that fit, with TC. With rotate, a rotating
// RRset starts one record further than the previous response did.
func (m *Response) AppendAnswer(sec *Section, limit int, rotate bool) {
	space := limit - len(m.Out)
	if m.EDNS {
		space -= OptLen
	}
	n := int(sec.an)
	an := sec.anLen()
	start := 0 // offset in sec.wire of the first answer record sent
	if sec.rotate && rotate {
		if k := int(sec.next.Add(1) % uint32(n)); k > 0 {
			start = sec.anEnd(k - 1)
		}
	}
	switch {
	case an <= space:
		m.Out = append(m.Out, sec.wire[start:an]...)
		m.Out = append(m.Out, sec.wire[:start]...)
		m.AN = uint16(n)
		if recs := sec.records(); recs <= space {
			m.Out = append(m.Out, sec.wire[an:recs]...)
			m.AR = sec.ar
		}
	default:
		// Whole records from start on, wrapping around, while they fit.
		k, end := 0, start
		for k < n {
			if end == an {
				end = 0
			}
			next := sec.anEnd(recordIndex(sec, end))
			if next-end > space {
				break
			}
			m.Out = append(m.Out, sec.wire[end:next]...)
			space -= next - end
			end = next
			k++
		}
		m.AN = uint16(k)
		m.Flags |= FlagTC
	}
}

// recordIndex returns the index of the answer record of sec that starts at
// offset off.
func recordIndex(sec *Section, off int) int {
	if off == 0 {
		return 0
	}
	lo, hi := 0, int(sec.an)
	for lo < hi { // the first end > off
		mid := (lo + hi) / 2
		if sec.anEnd(mid) <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// AppendNegative appends soa, the SOA of a zone whose wire name is zoneLen
// octets long and ends the question name (qlen octets), as the authority of
// a negative answer (RFC 2308 section 3), with the TTL a resolver may cache
// the answer for: the smaller of the SOA's TTL and its minimum field. Its
// owner, and the suffix of its two names (which must be in the zone), point
// at the zone in the question, whose spelling they echo.
func (m *Response) AppendNegative(soa *SOA, zoneLen, qlen int) {
	zoneOff := HeaderLen + qlen - zoneLen
	ptr := [2]byte{0xc0 | byte(zoneOff>>8), byte(zoneOff)}
	b := append(m.Out, ptr[0], ptr[1])
	b = binary.BigEndian.AppendUint16(b, TypeSOA)
	b = binary.BigEndian.AppendUint16(b, ClassIN)
	b = binary.BigEndian.AppendUint32(b, min(soa.TTL, soa.Minimum()))
	rd := len(b) + 2
	b = append(b, 0, 0)
	b = append(b, soa.MName[:len(soa.MName)-zoneLen]...)
	b = append(b, ptr[0], ptr[1])
	b = append(b, soa.RName[:len(soa.RName)-zoneLen]...)
	b = append(b, ptr[0], ptr[1])
	b = soa.AppendNumbers(b)
	binary.BigEndian.PutUint16(b[rd-2:], uint16(len(b)-rd))
	m.Out = b
	m.NS = 1
}
