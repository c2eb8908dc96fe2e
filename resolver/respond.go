package resolver

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
)

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
	dnswire.Query
	// noChase answers a CNAME alone, as if no target could be chased.
	noChase bool
}

// reply writes the response to req into out and says what to do with it.
// tcp tells whether the response may be as large as a TCP message.
func (r *Resolver) reply(out []byte, req *dns.Msg, tcp bool) ([]byte, action) {
	return r.replyTo(out, req, tcp, false)
}

// replyTo is reply; with noChase, a CNAME is answered alone (never
// actChase).
func (r *Resolver) replyTo(out []byte, req *dns.Msg, tcp, noChase bool) ([]byte, action) {
	if cap(out) < dnswire.MinOut {
		out = make([]byte, 0, dnswire.MinOut)
	}
	var bits uint16
	bits |= uint16(req.Opcode&0xf) << 11
	if req.RecursionDesired {
		bits |= dnswire.FlagRD
	}
	if req.CheckingDisabled {
		bits |= dnswire.FlagCD
	}
	q := query{Query: dnswire.Query{ID: req.Id, Flags: dnswire.ResponseFlags(bits)}, noChase: noChase}
	m := dnswire.Response{Out: out[:dnswire.HeaderLen], ID: q.ID, Flags: q.Flags}

	var opt *dns.OPT
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil { // RFC 6891 section 6.1.1
				m.Rcode = dns.RcodeFormatError
				return m.Done(), actAnswer
			}
			opt = o
		}
	}
	if opt != nil {
		q.OPT, q.DO, q.UDPSize, q.Version = true, opt.Do(), opt.UDPSize(), opt.Version()
		m.EDNS, m.DO = true, q.DO
	}
	if req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m.Done(), actAnswer
	}
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m.Done(), actAnswer
	}
	qq := &req.Question[0]
	var nb [dnswire.MaxNameLen + 1]byte
	end, err := dns.PackDomainName(qq.Name, nb[:], 0, nil, false)
	if err != nil || end == 0 || end > dnswire.MaxNameLen {
		m.Rcode = dns.RcodeFormatError
		return m.Done(), actAnswer
	}
	q.Name, q.Qtype, q.Qclass = nb[:end], qq.Qtype, qq.Qclass
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
		case rest == len(dnswire.InAddrArpa) && string(key[i:]) == dnswire.InAddrArpa,
			rest == len(dnswire.IP6Arpa) && string(key[i:]) == dnswire.IP6Arpa:
			return zoneReverse
		case key[i] == 0:
			return zoneOther
		}
	}
	return zoneOther
}

// respond writes the response to q into out (whose capacity must be at
// least dnswire.MinOut) and says what to do with it.
func (r *Resolver) respond(out []byte, q *query, tcp bool) ([]byte, action) {
	m := dnswire.Response{Out: out[:dnswire.HeaderLen], ID: q.ID, Flags: q.Flags, EDNS: q.OPT, DO: q.DO}
	limit := dnswire.UDPLimit(q.OPT, q.UDPSize)
	if tcp {
		limit = dnswire.MaxMsgLen
	}
	qname := q.Name
	m.Out = append(m.Out, qname...)
	m.Out = binary.BigEndian.AppendUint16(m.Out, q.Qtype)
	m.Out = binary.BigEndian.AppendUint16(m.Out, q.Qclass)
	m.QD = 1

	if q.OPT && q.Version != 0 {
		m.Rcode = dns.RcodeBadVers
		return m.Done(), actAnswer
	}

	var lbuf [dnswire.MaxNameLen]byte
	key := lbuf[:len(qname)]
	for i, c := range qname {
		key[i] = dnswire.Lower(c)
	}
	if isAppliedIndex(q, key) {
		return r.appliedIndex(&m), actAnswer
	}
	ix := r.idx.Load()
	switch r.classify(key) {
	case zoneOther:
		if n := ix.outsideNode(key); n != nil {
			return r.answerOutside(&m, ix, n, key, q, limit)
		}
		return r.outside(&m)
	case zoneReverse:
		// Authoritative only for the PTR records of cluster addresses.
		if ix == nil {
			m.Rcode = dns.RcodeServerFailure // no View yet
			return m.Done(), actAnswer
		}
		n := ix.lookup(key)
		if n == nil || q.Qclass != dnswire.ClassIN || q.Qtype != dnswire.TypePTR && q.Qtype != dnswire.TypeANY {
			return r.outside(&m)
		}
		m.Flags |= dnswire.FlagAA
		m.AppendAnswer(n.set(dnswire.TypePTR), limit, !r.noRotate)
		return m.Done(), actAnswer
	}

	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused
		return m.Done(), actAnswer
	}
	if q.Qtype == dnswire.TypeAXFR || q.Qtype == dnswire.TypeIXFR {
		m.Rcode = dns.RcodeRefused // no zone transfers (RFC 5936 section 4.2)
		return m.Done(), actAnswer
	}
	if ix == nil {
		m.Rcode = dns.RcodeServerFailure // no View yet
		return m.Done(), actAnswer
	}

	m.Flags |= dnswire.FlagAA
	n := ix.lookup(key)
	if n == nil {
		if ix.podMode == PodInsecure || ix.podsFromView {
			switch a, kind := r.pod(ix, key); kind {
			case podNamespace:
				r.negative(&m, ix, len(qname))
				return m.Done(), actAnswer
			case podAddress:
				if q.Qtype == dnswire.TypeANY || q.Qtype == dnswire.TypeA && a.Is4() || q.Qtype == dnswire.TypeAAAA && !a.Is4() {
					r.podRecord(&m, a, ix.ttl)
				} else {
					r.negative(&m, ix, len(qname))
				}
				return m.Done(), actAnswer
			}
		}
		m.Rcode = dns.RcodeNameError
		r.negative(&m, ix, len(qname))
		return m.Done(), actAnswer
	}
	sec := n.cname()
	if sec != nil && !q.noChase && chases(q.Qtype) && r.chased(ix, n, sec, key) {
		return nil, actChase // the general path answers with the chain
	}
	if sec == nil {
		if q.Qtype == dnswire.TypeANY {
			// RFC 8482: answer ANY with one RRset.
			sec = n.first()
		} else {
			sec = n.set(q.Qtype)
		}
	}
	if sec == nil {
		r.negative(&m, ix, len(qname))
		return m.Done(), actAnswer
	}
	m.AppendAnswer(sec, limit, !r.noRotate)
	return m.Done(), actAnswer
}

// chased reports whether the CNAME sec of n, the node of the lower-cased
// question name key, is chased: Forward may be asked, or its target is in
// the zone, or, for a custom record, is another custom name outside it,
// both answered from the index. A CNAME is rare, so its target is read
// from its records rather than held by every node.
func (r *Resolver) chased(ix *index, n *node, sec *dnswire.Section, key []byte) bool {
	if r.forward != nil {
		return true
	}
	var buf [dnswire.MaxNameLen]byte
	target, ok := sec.AppendTarget(buf[:0], key)
	return ok && (r.classify(target) == zoneCluster || n.owner == nil && ix.outsideNode(target) != nil)
}

// outside answers a query for a name the resolver is not authoritative for.
func (r *Resolver) outside(m *dnswire.Response) ([]byte, action) {
	if r.forward != nil {
		return nil, actForward
	}
	m.Rcode = dns.RcodeRefused
	return m.Done(), actAnswer
}

// negative appends the zone's SOA as the authority of a negative answer
// (RFC 2308 section 3).
func (r *Resolver) negative(m *dnswire.Response, ix *index, qlen int) {
	m.AppendNegative(&ix.soa, len(r.zone), qlen)
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
func (r *Resolver) podRecord(m *dnswire.Response, a netip.Addr, ttl uint32) {
	b := append(m.Out, 0xc0, dnswire.HeaderLen)
	if a.Is4() {
		b = binary.BigEndian.AppendUint16(b, dnswire.TypeA)
	} else {
		b = binary.BigEndian.AppendUint16(b, dnswire.TypeAAAA)
	}
	b = binary.BigEndian.AppendUint16(b, dnswire.ClassIN)
	b = binary.BigEndian.AppendUint32(b, ttl)
	if a.Is4() {
		v := a.As4()
		b = append(append(b, 0, 4), v[:]...)
	} else {
		v := a.As16()
		b = append(append(b, 0, 16), v[:]...)
	}
	m.Out = b
	m.AN = 1
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
