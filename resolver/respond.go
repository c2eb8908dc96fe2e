package resolver

import (
	"encoding/binary"
	"net/netip"

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
// size, at least 512 octets (RFC 6891 section 6.2.5), but is never larger
// than ednsPayload, the size DNS flag day 2020 recommends, whatever larger
// size the requester advertises: a larger datagram may be fragmented, and
// fragments get lost or spoofed (RFC 8900), and a small query would get an
// answer up to 60 times its size, which makes an amplifier for attacks on a
// forged source address. A larger answer is truncated, and the client asks
// again over TCP. The resolver also advertises ednsPayload as what it
// accepts.
const (
	ednsPayload   = 1232
	minUDPPayload = 512
)

// udpLimit returns the largest UDP response to a query, with an EDNS record
// advertising size or (edns false) without one.
func udpLimit(edns bool, size uint16) int {
	if !edns {
		return minUDPPayload
	}
	return min(max(int(size), minUDPPayload), ednsPayload)
}

// action says what ServeDNS does with a query after reply.
type action int

const (
	actDrop    action = iota // send nothing
	actAnswer                // send reply's bytes
	actForward               // hand the query to Config.Forward
	actChase                 // answer with the CNAME chain (chase.go)
)

// query is what answering needs of a request, however it was read: from a
// dns.Msg (ServeDNS) or from the raw message (the UDP fast path). Both
// readers fill it alike, and respond is the one place answers come from.
type query struct {
	id    uint16
	flags uint16 // of the response: QR, and the request's opcode, RD and CD
	// name is the question name as asked, in uncompressed wire form.
	name          []byte
	qtype, qclass uint16
	// The OPT record, if there was one.
	opt     bool
	do      bool
	udpSize uint16
	version uint8
	// noChase answers a CNAME alone, as if no target could be chased.
	noChase bool
}

// responseFlags returns the flags of a response to a request with bits.
func responseFlags(bits uint16) uint16 {
	return flagQR | bits&(0xf<<11|flagRD|flagCD)
}

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

// minOut is the capacity a response buffer needs for everything but the
// records: header, question, the SOA of a negative answer and OPT.
const minOut = 512

// reply writes the response to req into out and says what to do with it.
// tcp tells whether the response may be as large as a TCP message.
func (r *Resolver) reply(out []byte, req *dns.Msg, tcp bool) ([]byte, action) {
	return r.replyTo(out, req, tcp, false)
}

// replyTo is reply; with noChase, a CNAME is answered alone (never
// actChase).
func (r *Resolver) replyTo(out []byte, req *dns.Msg, tcp, noChase bool) ([]byte, action) {
	if cap(out) < minOut {
		out = make([]byte, 0, minOut)
	}
	var bits uint16
	bits |= uint16(req.Opcode&0xf) << 11
	if req.RecursionDesired {
		bits |= flagRD
	}
	if req.CheckingDisabled {
		bits |= flagCD
	}
	q := query{id: req.Id, flags: responseFlags(bits), noChase: noChase}
	m := response{out: out[:headerLen], id: q.id, flags: q.flags}

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
	if opt != nil {
		q.opt, q.do, q.udpSize, q.version = true, opt.Do(), opt.UDPSize(), opt.Version()
		m.edns, m.do = true, q.do
	}
	if req.Opcode != dns.OpcodeQuery {
		m.rcode = dns.RcodeNotImplemented
		return m.done(), actAnswer
	}
	if len(req.Question) != 1 {
		m.rcode = dns.RcodeFormatError
		return m.done(), actAnswer
	}
	qq := &req.Question[0]
	var nb [maxNameLen + 1]byte
	end, err := dns.PackDomainName(qq.Name, nb[:], 0, nil, false)
	if err != nil || end == 0 || end > maxNameLen {
		m.rcode = dns.RcodeFormatError
		return m.done(), actAnswer
	}
	q.name, q.qtype, q.qclass = nb[:end], qq.Qtype, qq.Qclass
	return r.respond(out, &q, tcp)
}

// Where a question name belongs.
const (
	zoneOther   = iota // neither: forwarded
	zoneCluster        // the cluster zone
	zoneReverse        // in-addr.arpa. or ip6.arpa.
)

// classify says where the lower-cased wire name key belongs: the cluster
// zone's or a reverse zone's name must be its suffix at a label boundary.
func (r *Resolver) classify(key []byte) int {
	for i := 0; i < len(key); i += 1 + int(key[i]) {
		switch rest := len(key) - i; {
		case rest == len(r.zone) && string(key[i:]) == r.zone:
			return zoneCluster
		case rest == len(inAddrArpa) && string(key[i:]) == inAddrArpa,
			rest == len(ip6Arpa) && string(key[i:]) == ip6Arpa:
			return zoneReverse
		case key[i] == 0:
			return zoneOther
		}
	}
	return zoneOther
}

// respond writes the response to q into out (whose capacity must be at
// least minOut) and says what to do with it.
func (r *Resolver) respond(out []byte, q *query, tcp bool) ([]byte, action) {
	m := response{out: out[:headerLen], id: q.id, flags: q.flags, edns: q.opt, do: q.do}
	limit := udpLimit(q.opt, q.udpSize)
	if tcp {
		limit = maxMsgLen
	}
	qname := q.name
	m.out = append(m.out, qname...)
	m.out = binary.BigEndian.AppendUint16(m.out, q.qtype)
	m.out = binary.BigEndian.AppendUint16(m.out, q.qclass)
	m.qd = 1

	if q.opt && q.version != 0 {
		m.rcode = dns.RcodeBadVers
		return m.done(), actAnswer
	}

	var lbuf [maxNameLen]byte
	key := lbuf[:len(qname)]
	for i, c := range qname {
		key[i] = lower(c)
	}
	if isAppliedIndex(q, key) {
		return r.appliedIndex(&m), actAnswer
	}
	ix := r.idx.Load()
	switch r.classify(key) {
	case zoneOther:
		if n := ix.outsideNode(key); n != nil {
			return r.answerOutside(&m, n, q, limit)
		}
		return r.outside(&m)
	case zoneReverse:
		// Authoritative only for the PTR records of cluster addresses.
		if ix == nil {
			m.rcode = dns.RcodeServerFailure // no View yet
			return m.done(), actAnswer
		}
		n := ix.nodes[string(key)]
		if n == nil || q.qclass != classIN || q.qtype != typePTR && q.qtype != typeANY {
			return r.outside(&m)
		}
		m.flags |= flagAA
		r.positive(&m, n.set(typePTR), limit)
		return m.done(), actAnswer
	}

	if q.qclass != dns.ClassINET {
		m.rcode = dns.RcodeRefused
		return m.done(), actAnswer
	}
	if q.qtype == typeAXFR || q.qtype == typeIXFR {
		m.rcode = dns.RcodeRefused // no zone transfers (RFC 5936 section 4.2)
		return m.done(), actAnswer
	}
	if ix == nil {
		m.rcode = dns.RcodeServerFailure // no View yet
		return m.done(), actAnswer
	}

	m.flags |= flagAA
	n := ix.nodes[string(key)]
	if n == nil {
		if ix.podMode == PodInsecure || ix.podsFromView {
			switch a, kind := r.pod(ix, key); kind {
			case podNamespace:
				r.negative(&m, ix, len(qname))
				return m.done(), actAnswer
			case podAddress:
				if q.qtype == typeANY || q.qtype == typeA && a.Is4() || q.qtype == typeAAAA && !a.Is4() {
					r.podRecord(&m, a, ix.ttl)
				} else {
					r.negative(&m, ix, len(qname))
				}
				return m.done(), actAnswer
			}
		}
		m.rcode = dns.RcodeNameError
		r.negative(&m, ix, len(qname))
		return m.done(), actAnswer
	}
	sec := n.cname
	if sec != nil && !q.noChase && chases(q.qtype) && (n.cnameInZone || r.forward != nil) {
		return nil, actChase // the general path answers with the chain
	}
	if sec == nil {
		if q.qtype == typeANY {
			// RFC 8482: answer ANY with one RRset.
			if len(n.sets) > 0 {
				sec = n.sets[0].sec
			}
		} else {
			sec = n.set(q.qtype)
		}
	}
	if sec == nil {
		r.negative(&m, ix, len(qname))
		return m.done(), actAnswer
	}
	r.positive(&m, sec, limit)
	return m.done(), actAnswer
}

// outside answers a query for a name the resolver is not authoritative for.
func (r *Resolver) outside(m *response) ([]byte, action) {
	if r.forward != nil {
		return nil, actForward
	}
	m.rcode = dns.RcodeRefused
	return m.done(), actAnswer
}

// positive appends the records of sec: everything if it fits in limit; else
// without the additional section, which needs no TC (RFC 2181 section 9);
// else the answer records that fit, with TC. A rotating RRset starts one
// record further than the previous response did.
func (r *Resolver) positive(m *response, sec *section, limit int) {
	space := limit - len(m.out)
	if m.edns {
		space -= optLen
	}
	n := len(sec.anEnd)
	an := sec.anLen()
	start := 0 // offset in sec.wire of the first answer record sent
	if sec.rotate && !r.noRotate {
		if k := int(sec.next.Add(1) % uint32(n)); k > 0 {
			start = int(sec.anEnd[k-1])
		}
	}
	switch {
	case an <= space:
		m.out = append(m.out, sec.wire[start:an]...)
		m.out = append(m.out, sec.wire[:start]...)
		m.an = uint16(n)
		if len(sec.wire) <= space {
			m.out = append(m.out, sec.wire[an:]...)
			m.ar = sec.ar
		}
	default:
		// Whole records from start on, wrapping around, while they fit.
		k, end := 0, start
		for k < n {
			if end == an {
				end = 0
			}
			next := int(sec.anEnd[recordIndex(sec, end)])
			if next-end > space {
				break
			}
			m.out = append(m.out, sec.wire[end:next]...)
			space -= next - end
			end = next
			k++
		}
		m.an = uint16(k)
		m.flags |= flagTC
	}
}

// recordIndex returns the index of the answer record of sec that starts at
// offset off.
func recordIndex(sec *section, off int) int {
	if off == 0 {
		return 0
	}
	lo, hi := 0, len(sec.anEnd)
	for lo < hi { // the first end > off
		mid := (lo + hi) / 2
		if int(sec.anEnd[mid]) <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// negative appends the zone's SOA as the authority of a negative answer
// (RFC 2308 section 3), with the TTL a resolver may cache the answer for:
// the smaller of the SOA's TTL and its minimum field, which are equal here.
// Its owner, and the suffix of its two names, point at the zone in the
// question.
func (r *Resolver) negative(m *response, ix *index, qlen int) {
	zoneOff := headerLen + qlen - len(r.zone)
	ptr := [2]byte{0xc0 | byte(zoneOff>>8), byte(zoneOff)}
	b := append(m.out, ptr[0], ptr[1])
	b = binary.BigEndian.AppendUint16(b, typeSOA)
	b = binary.BigEndian.AppendUint16(b, classIN)
	b = binary.BigEndian.AppendUint32(b, min(ix.soa.ttl, ix.soa.minimum()))
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

// Kinds of names below pod.<zone> answered per query.
const (
	podOther     = iota // anything else: NXDOMAIN
	podNamespace        // <ns>.pod.<zone>: an empty non-terminal
	podAddress          // <a-b-c-d>.<ns>.pod.<zone>
)

// pod says what the lower-cased wire name key, not in the index, is below
// pod.<zone>, as podName does, once the View has had its say. In a namespace
// the View tracks and lacks there is nothing (NXDOMAIN, as CoreDNS answers).
// With pods from the View (verified mode), a namespace exists only while one
// of its pods has an address, and an address only while a pod of that
// namespace has it.
func (r *Resolver) pod(ix *index, key []byte) (netip.Addr, int) {
	a, ns, kind := r.podName(key)
	if kind == podOther {
		return a, kind
	}
	v := ix.view
	switch {
	case ix.namespacesFromView && !v.HasNamespace(string(ns)),
		ix.podsFromView && kind == podNamespace && !v.HasPodsIn(ns),
		ix.podsFromView && kind == podAddress && !v.HasPodAddr(ns, a):
		return netip.Addr{}, podOther
	}
	return a, kind
}

// podName says what the lower-cased wire name key is below pod.<zone>; for
// a namespace or pod address name, the namespace label, and for a pod
// address name, the address.
func (r *Resolver) podName(key []byte) (addr netip.Addr, ns []byte, kind int) {
	l1 := 1 + int(key[0]) // the start of the second label
	if l1 >= len(key) || key[0] == 0 {
		return netip.Addr{}, nil, podOther
	}
	if string(key[l1:]) == r.podZone {
		return netip.Addr{}, key[1:l1], podNamespace
	}
	l2 := l1 + 1 + int(key[l1])
	if l2 >= len(key) || key[l1] == 0 || string(key[l2:]) != r.podZone {
		return netip.Addr{}, nil, podOther
	}
	if a, ok := parseDashed(key[1:l1]); ok {
		return a, key[l1+1 : l2], podAddress
	}
	return netip.Addr{}, nil, podOther
}

// podRecord appends the A or AAAA record of a pod address, owned by the
// question name.
func (r *Resolver) podRecord(m *response, a netip.Addr, ttl uint32) {
	b := append(m.out, 0xc0, headerLen)
	if a.Is4() {
		b = binary.BigEndian.AppendUint16(b, typeA)
	} else {
		b = binary.BigEndian.AppendUint16(b, typeAAAA)
	}
	b = binary.BigEndian.AppendUint16(b, classIN)
	b = binary.BigEndian.AppendUint32(b, ttl)
	if a.Is4() {
		v := a.As4()
		b = append(append(b, 0, 4), v[:]...)
	} else {
		v := a.As16()
		b = append(append(b, 0, 16), v[:]...)
	}
	m.out = b
	m.an = 1
}

// parseDashed parses a pod address label (lower case) as CoreDNS does: with
// exactly three hyphens and no two in a row it is an IPv4 address with
// hyphens for dots, else an IPv6 address with hyphens for colons.
func parseDashed(l []byte) (netip.Addr, bool) {
	dashes, double := 0, false
	for i, c := range l {
		if c == '-' {
			dashes++
			double = double || i > 0 && l[i-1] == '-'
		}
	}
	if dashes == 3 && !double {
		return parseDashed4(l)
	}
	return parseDashed6(l)
}

func parseDashed4(l []byte) (netip.Addr, bool) {
	var ip [4]byte
	k := 0
	for i := 0; i <= len(l); i++ {
		j := i
		v := 0
		for j < len(l) && '0' <= l[j] && l[j] <= '9' {
			v = v*10 + int(l[j]-'0')
			j++
			if j-i > 3 {
				return netip.Addr{}, false
			}
		}
		// One to three digits, no leading zero (as netip.ParseAddr), at
		// most 255, then a hyphen or the end.
		if j == i || v > 255 || j-i > 1 && l[i] == '0' || k == 4 {
			return netip.Addr{}, false
		}
		ip[k] = byte(v)
		k++
		if j < len(l) && l[j] != '-' {
			return netip.Addr{}, false
		}
		i = j
	}
	if k != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

func parseDashed6(l []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // the group where "--" stood
	g := 0         // groups read
	i := 0
	if len(l) >= 2 && l[0] == '-' && l[1] == '-' {
		ellipsis, i = 0, 2
	}
	for i < len(l) {
		if g == 8 {
			return netip.Addr{}, false
		}
		v, n := 0, 0
		for i < len(l) && n <= 4 {
			d := hexDigit(l[i])
			if d < 0 {
				break
			}
			v = v<<4 | d
			i++
			n++
		}
		if n == 0 || n > 4 {
			return netip.Addr{}, false
		}
		ip[2*g], ip[2*g+1] = byte(v>>8), byte(v)
		g++
		if i == len(l) {
			break
		}
		if l[i] != '-' {
			return netip.Addr{}, false
		}
		i++
		if i < len(l) && l[i] == '-' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = g
			i++
		} else if i == len(l) {
			return netip.Addr{}, false // a trailing single hyphen
		}
	}
	switch {
	case ellipsis < 0 && g != 8, ellipsis >= 0 && g == 8:
		return netip.Addr{}, false
	case ellipsis >= 0:
		n := g - ellipsis // groups after the ellipsis move to the end
		copy(ip[16-2*n:], ip[2*ellipsis:2*g])
		clear(ip[2*ellipsis : 16-2*n])
	}
	return netip.AddrFrom16(ip), true
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
