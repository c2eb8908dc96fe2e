package dnswire

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
)

// Names made by this package are lower-case, uncompressed wire-format
// strings ("\x03web\x07default\x03svc\x07cluster\x05local\x00"): the
// resolver's index keys, directly comparable with a lower-cased question
// name, and cheap to take suffixes of for compression.

const (
	ClassIN = 1

	TypeA     = 1
	TypeNS    = 2
	TypeCNAME = 5
	TypeSOA   = 6
	TypePTR   = 12
	TypeTXT   = 16
	TypeAAAA  = 28
	TypeSRV   = 33
	TypeOPT   = 41
	TypeIXFR  = 251
	TypeAXFR  = 252
	TypeANY   = 255

	HeaderLen   = 12
	MaxNameLen  = 255 // wire length of a name, including the root label
	MaxLabelLen = 63
	MaxMsgLen   = 65535
	// maxSection bounds the precomputed sections of one RRset so that a
	// response with any question and an OPT record still fits in a TCP message.
	maxSection = MaxMsgLen - HeaderLen - MaxNameLen - 4 - OptLen
	OptLen     = 11 // an OPT record without options
)

// ValidLabel reports whether s can be a label of a name the resolver
// publishes: 1 to 63 ASCII letters, digits, hyphens or underscores. Such a
// label needs no escaping, so its presentation and wire forms agree byte for
// byte. Kubernetes validates the names it lets us see far more strictly.
func ValidLabel(s string) bool {
	if len(s) == 0 || len(s) > MaxLabelLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// appendLabel appends s, lower-cased, as one wire label. s must be valid.
func appendLabel(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	for i := 0; i < len(s); i++ {
		b = append(b, Lower(s[i]))
	}
	return b
}

// Lower returns c lower-cased if it is an ASCII letter.
func Lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Name returns the wire name of the given labels followed by suffix (a
// wire name), or false when a label is not valid or the name is too long.
func Name(suffix string, labels ...string) (string, bool) {
	n := len(suffix)
	for _, l := range labels {
		if !ValidLabel(l) {
			return "", false
		}
		n += 1 + len(l)
	}
	if n > MaxNameLen {
		return "", false
	}
	b := make([]byte, 0, n)
	for _, l := range labels {
		b = appendLabel(b, l)
	}
	return string(append(b, suffix...)), true
}

// ParseName turns a presentation name ("a.b.", trailing dot optional) made
// of valid labels into a wire name. The root is "." .
func ParseName(s string) (string, bool) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "\x00", true
	}
	return Name("\x00", strings.Split(s, ".")...)
}

// Presentation returns the dotted form of a wire name made by this package.
func Presentation(w string) string {
	if w == "\x00" {
		return "."
	}
	var sb strings.Builder
	for i := 0; i < len(w) && w[i] != 0; i += 1 + int(w[i]) {
		sb.WriteString(w[i+1 : i+1+int(w[i])])
		sb.WriteByte('.')
	}
	return sb.String()
}

// The reverse zones, in wire form.
const (
	InAddrArpa = "\x07in-addr\x04arpa\x00"
	IP6Arpa    = "\x03ip6\x04arpa\x00"
)

// ReverseName returns the wire name of a's PTR record:
// 4.3.2.10.in-addr.arpa. for 10.2.3.4, nibbles under ip6.arpa. for IPv6.
func ReverseName(a netip.Addr) string {
	var b []byte
	if a.Is4() {
		v := a.As4()
		for i := 3; i >= 0; i-- {
			d := strconv.Itoa(int(v[i]))
			b = append(append(b, byte(len(d))), d...)
		}
		return string(append(b, InAddrArpa...))
	}
	const hex = "0123456789abcdef"
	v := a.As16()
	for i := 15; i >= 0; i-- {
		b = append(b, 1, hex[v[i]&0xf], 1, hex[v[i]>>4])
	}
	return string(append(b, IP6Arpa...))
}

// Section is the precomputed wire form of the answer and additional sections
// of a positive response for one owner name and type. It is small and
// built in place (Builder.Finish), so that its owner can hold it by value:
// an index holds hundreds of thousands.
type Section struct {
	// wire is the answer records, then the additional records, then the
	// end offset of each answer record but the first (two octets each,
	// big-endian): one allocation, read only, with nothing after the
	// records of the common RRset of one record.
	wire string
	// next is where the rotation of a rotating Section stands.
	next atomic.Uint32
	typ  uint16
	an   uint16 // answer records
	ar   uint16 // additional records
	end0 uint16 // the end offset of the first answer record
	// rotate is set on RRsets of several A, AAAA or SRV records. Their
	// answer records hold no compression target and point only at the
	// question, so they can be sent in any order; each response starts
	// one record further (round robin, as CoreDNS's loadbalance).
	rotate bool
}

// Type returns the type of the Section's RRset.
func (s *Section) Type() uint16 { return s.typ }

// records returns the length of the answer and additional records.
func (s *Section) records() int {
	if s.an == 0 {
		return len(s.wire)
	}
	return len(s.wire) - 2*(int(s.an)-1)
}

// anEnd returns the end offset of answer record i.
func (s *Section) anEnd(i int) int {
	if i == 0 {
		return int(s.end0)
	}
	t := s.records() + 2*(i-1)
	return int(s.wire[t])<<8 | int(s.wire[t+1])
}

func (s *Section) anLen() int {
	if s.an == 0 {
		return 0
	}
	return s.anEnd(int(s.an) - 1)
}

// Target returns the name in the RDATA of the first answer record of s, a
// CNAME, NS or PTR RRset that a Builder wrote for owner, uncompressed; false
// if s has no such record. The name is allocated: see AppendTarget.
func (s *Section) Target(owner string) (string, bool) {
	t, ok := s.AppendTarget(nil, []byte(owner))
	return string(t), ok
}

// AppendTarget appends to dst the name Target returns, so that a caller
// with room in dst (MaxNameLen octets) allocates nothing.
func (s *Section) AppendTarget(dst, owner []byte) ([]byte, bool) {
	recs := s.wire[:s.records()]
	if s.an == 0 {
		return dst, false
	}
	// Past the owner name (a pointer, or labels ending in one or the
	// root), type, class, TTL and RDLENGTH.
	i := 0
	for i < len(recs) && recs[i] != 0 && recs[i]&0xc0 == 0 {
		i += 1 + int(recs[i])
	}
	switch {
	case i < len(recs) && recs[i] == 0:
		i++
	case i+1 < len(recs):
		i += 2
	}
	i += 10
	// The name's labels are in recs, or, past a pointer, in the message
	// the pointers were made for: the header, the question (owner, type,
	// class), then recs. The question is read from owner.
	inOwner := false
	at := func(k int) byte {
		if inOwner {
			return owner[k]
		}
		return recs[k]
	}
	size := func() int {
		if inOwner {
			return len(owner)
		}
		return len(recs)
	}
	start := len(dst)
	for hops := 0; i < size() && hops < 128; {
		switch c := at(i); {
		case c == 0:
			return append(dst, 0), true
		case c&0xc0 == 0xc0:
			if i+1 >= size() {
				return dst[:start], false
			}
			switch off, q := int(c&0x3f)<<8|int(at(i+1)), HeaderLen+len(owner); {
			case off >= HeaderLen && off < q:
				inOwner, i = true, off-HeaderLen
			case off >= q+4 && off < q+4+len(recs):
				inOwner, i = false, off-q-4
			default:
				return dst[:start], false
			}
			hops++
		case i+1+int(c) <= size():
			for k := i; k < i+1+int(c); k++ {
				dst = append(dst, at(k))
			}
			i += 1 + int(c)
		default:
			return dst[:start], false
		}
	}
	return dst[:start], false
}

// Builder writes resource records into a pretend message whose header and
// question are in place, so that compression pointers are right for any real
// response whose question name has the owner's length.
type Builder struct {
	TTL   uint32 // of every record
	buf   []byte
	start int // where the answer section starts
	names []compName
	m     map[string]int // index over names once there are many
	anEnd []uint16
	ar    uint16
	full  bool // a record did not fit in maxSection and was dropped
}

type compName struct {
	name string
	off  int
}

// Begin starts the sections of a response to a question for owner.
func (b *Builder) Begin(owner string) {
	b.buf = append(b.buf[:0], make([]byte, HeaderLen)...)
	b.names = b.names[:0]
	b.m = nil
	b.anEnd = b.anEnd[:0]
	b.ar = 0
	b.full = false
	b.writeName(owner, true)
	b.buf = append(b.buf, 0, 0, 0, 0) // qtype, qclass
	b.start = len(b.buf)
}

// Finish stores the sections written since Begin in s, an RRset of type
// typ. s must not be in use by a response.
func (b *Builder) Finish(s *Section, typ uint16) {
	n := len(b.buf)
	s.end0 = 0
	for i, e := range b.anEnd {
		if i == 0 {
			s.end0 = e
		} else {
			b.buf = binary.BigEndian.AppendUint16(b.buf, e)
		}
	}
	s.wire = string(b.buf[b.start:])
	b.buf = b.buf[:n]
	s.next.Store(0)
	s.typ, s.an, s.ar, s.rotate = typ, uint16(len(b.anEnd)), b.ar, false
}

// FinishRotating is Finish for an RRset that may be rotated: one whose
// answer records are A, AAAA or SRV records of the question's owner.
func (b *Builder) FinishRotating(s *Section, typ uint16) {
	b.Finish(s, typ)
	s.rotate = s.an > 1
}

func (b *Builder) lookup(suffix string) (int, bool) {
	if b.m != nil {
		off, ok := b.m[suffix]
		return off, ok
	}
	for _, c := range b.names {
		if c.name == suffix {
			return c.off, true
		}
	}
	if len(b.names) > 16 {
		b.m = make(map[string]int, 2*len(b.names))
		for _, c := range b.names {
			b.m[c.name] = c.off
		}
	}
	return 0, false
}

func (b *Builder) remember(suffix string, off int) {
	if off > 0x3fff {
		return
	}
	b.names = append(b.names, compName{suffix, off})
	if b.m != nil {
		b.m[suffix] = off
	}
}

// writeName writes a wire name, compressed against earlier names when
// compress is set (RFC 1035 types only; RFC 3597 section 4 forbids it in
// newer types such as SRV). Only compressed-form names are remembered as
// targets, so pointers only ever lead into the question or RFC 1035 names.
func (b *Builder) writeName(n string, compress bool) {
	for i := 0; ; {
		if n[i] == 0 {
			b.buf = append(b.buf, 0)
			return
		}
		if compress {
			if off, ok := b.lookup(n[i:]); ok {
				b.buf = append(b.buf, 0xc0|byte(off>>8), byte(off))
				return
			}
			b.remember(n[i:], len(b.buf))
		}
		l := int(n[i])
		b.buf = append(b.buf, n[i:i+1+l]...)
		i += 1 + l
	}
}

// rr writes a record's owner, type, class and TTL and returns where its
// RDLENGTH goes; end fills that in.
func (b *Builder) rr(owner string, typ uint16) int {
	b.writeName(owner, true)
	b.buf = binary.BigEndian.AppendUint16(b.buf, typ)
	b.buf = binary.BigEndian.AppendUint16(b.buf, ClassIN)
	b.buf = binary.BigEndian.AppendUint32(b.buf, b.TTL)
	b.buf = append(b.buf, 0, 0)
	return len(b.buf)
}

func (b *Builder) end(rdata int) {
	binary.BigEndian.PutUint16(b.buf[rdata-2:], uint16(len(b.buf)-rdata))
}

// record writes one record with write and counts it in the answer section,
// or in the additional section if additional. A record that would make the
// sections longer than maxSection is undone, and so are all later ones.
func (b *Builder) record(additional bool, write func()) {
	if b.full {
		return
	}
	mark, marks := len(b.buf), len(b.names)
	write()
	if len(b.buf)-b.start > maxSection {
		b.buf, b.names, b.m, b.full = b.buf[:mark], b.names[:marks], nil, true
		return
	}
	if additional {
		b.ar++
	} else {
		b.anEnd = append(b.anEnd, uint16(len(b.buf)-b.start))
	}
}

// Addr writes an A or AAAA record of owner, in the additional section if
// additional.
func (b *Builder) Addr(additional bool, owner string, a netip.Addr) {
	b.record(additional, func() {
		if a.Is4() {
			rd := b.rr(owner, TypeA)
			v4 := a.As4()
			b.buf = append(b.buf, v4[:]...)
			b.end(rd)
			return
		}
		rd := b.rr(owner, TypeAAAA)
		v6 := a.As16()
		b.buf = append(b.buf, v6[:]...)
		b.end(rd)
	})
}

// SRV writes an SRV record; its target is not compressed (RFC 3597).
func (b *Builder) SRV(owner string, priority, weight, port uint16, target string) {
	b.record(false, func() {
		rd := b.rr(owner, TypeSRV)
		b.buf = binary.BigEndian.AppendUint16(b.buf, priority)
		b.buf = binary.BigEndian.AppendUint16(b.buf, weight)
		b.buf = binary.BigEndian.AppendUint16(b.buf, port)
		b.writeName(target, false)
		b.end(rd)
	})
}

// nameRecord writes a record whose RDATA is one compressible name (CNAME, NS).
func (b *Builder) NameRecord(owner string, typ uint16, target string) {
	b.record(false, func() {
		rd := b.rr(owner, typ)
		b.writeName(target, true)
		b.end(rd)
	})
}

// TXT writes a TXT record of the given strings (each under 256 octets).
func (b *Builder) TXT(owner string, texts ...string) {
	b.record(false, func() {
		rd := b.rr(owner, TypeTXT)
		for _, t := range texts {
			b.buf = append(b.buf, byte(len(t)))
			b.buf = append(b.buf, t...)
		}
		b.end(rd)
	})
}

// SOA writes the SOA record s of owner.
func (b *Builder) SOA(owner string, s *SOA) {
	b.record(false, func() {
		rd := b.rr(owner, TypeSOA)
		b.writeName(s.MName, true)
		b.writeName(s.RName, true)
		b.buf = s.AppendNumbers(b.buf)
		b.end(rd)
	})
}

// SOA is the data of a zone's SOA record.
type SOA struct {
	MName, RName string // wire names
	Serial       uint32
	TTL          uint32 // also the minimum (negative caching) TTL
}

// SOA timers. kdnsd has no secondaries, so they only need to be sane.
const (
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
)

// Minimum is the SOA's minimum field, the negative caching TTL (RFC 2308).
func (s *SOA) Minimum() uint32 { return s.TTL }

// AppendNumbers appends the SOA's serial, timers and minimum to b.
func (s *SOA) AppendNumbers(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, s.Serial)
	b = binary.BigEndian.AppendUint32(b, soaRefresh)
	b = binary.BigEndian.AppendUint32(b, soaRetry)
	b = binary.BigEndian.AppendUint32(b, soaExpire)
	return binary.BigEndian.AppendUint32(b, s.Minimum())
}
