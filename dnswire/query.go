package dnswire

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// Query is what answering needs of a request, however it was read: from a
// dns.Msg or from the raw message (ParseQuery).
type Query struct {
	ID    uint16
	Flags uint16 // of the response: QR, and the request's opcode, RD and CD
	// Name is the question name as asked, in uncompressed wire form.
	Name          []byte
	Qtype, Qclass uint16
	// The OPT record, if there was one.
	OPT     bool
	DO      bool
	UDPSize uint16
	Version uint8
}

// ParseQuery reads an ordinary query from msg into q, whose Name then points
// into msg. It returns false for anything it leaves to the general path:
// responses, opcodes other than QUERY, other section counts, labels with
// other octets than letters, digits, hyphens and underscores, compression,
// records other than one OPT, OPT options other than NSID, COOKIE and
// PADDING, trailing octets. What it accepts, miekg/dns unpacks to a message
// that the resolver turns into the same Query.
func ParseQuery(msg []byte, q *Query) bool {
	if len(msg) < HeaderLen+5 {
		return false
	}
	bits := binary.BigEndian.Uint16(msg[2:])
	if bits&FlagQR != 0 || bits>>11&0xf != dns.OpcodeQuery ||
		binary.BigEndian.Uint16(msg[4:]) != 1 || binary.BigEndian.Uint16(msg[6:]) != 0 ||
		binary.BigEndian.Uint16(msg[8:]) != 0 {
		return false
	}
	ar := binary.BigEndian.Uint16(msg[10:])
	if ar > 1 {
		return false
	}
	i := HeaderLen
	for {
		if i >= len(msg) {
			return false
		}
		l := int(msg[i])
		if l == 0 {
			i++
			break
		}
		if l > MaxLabelLen || i+1+l >= len(msg) {
			return false
		}
		for _, c := range msg[i+1 : i+1+l] {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		i += 1 + l
	}
	if i-HeaderLen > MaxNameLen || i+4 > len(msg) {
		return false
	}
	*q = Query{
		ID:     binary.BigEndian.Uint16(msg),
		Flags:  ResponseFlags(bits),
		Name:   msg[HeaderLen:i],
		Qtype:  binary.BigEndian.Uint16(msg[i:]),
		Qclass: binary.BigEndian.Uint16(msg[i+2:]),
	}
	i += 4
	if ar == 1 {
		// An OPT record: root owner, type, payload size, extended RCODE,
		// version, flags, RDLENGTH, options.
		if i+11 > len(msg) || msg[i] != 0 || binary.BigEndian.Uint16(msg[i+1:]) != TypeOPT {
			return false
		}
		q.OPT = true
		q.UDPSize = binary.BigEndian.Uint16(msg[i+3:])
		q.Version = msg[i+6]
		q.DO = msg[i+7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(msg[i+9:]))
		i += 11
		if i+rdlen != len(msg) {
			return false
		}
		for j := i; j < len(msg); {
			if j+4 > len(msg) {
				return false
			}
			switch binary.BigEndian.Uint16(msg[j:]) {
			case dns.EDNS0NSID, dns.EDNS0COOKIE, dns.EDNS0PADDING:
			default:
				return false
			}
			j += 4 + int(binary.BigEndian.Uint16(msg[j+2:]))
			if j > len(msg) {
				return false
			}
		}
		i = len(msg)
	}
	return i == len(msg)
}
