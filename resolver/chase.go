package resolver

import (
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/internal/dnswriter"
)

// CNAME chasing. A query of a data type other than CNAME for the name of an
// ExternalName service is answered, as CoreDNS's kubernetes plugin does,
// with the CNAME followed by the target's records: looked up in the index
// while the chain stays in the cluster zone, then asked of Config.Forward
// once it leaves it. Stub resolvers do not follow a CNAME-only answer from a
// server that offers no recursion, so without this the service would not
// resolve for them.
//
// respond never chases: it says actChase, the fast path hands such queries
// to the general path, and chaseReply builds the response there with
// miekg/dns, from what respond answers for each name of the chain. Chases
// that may reach Forward run on a goroutine of their own on the UDP server,
// as forwarded queries do.

const (
	// maxChase bounds the targets one response follows, in the zone and
	// in Forward's answer alike.
	maxChase = 8
	// defaultChaseTimeout bounds the wait for Forward's answer about a
	// target outside the zone: well under the 5 seconds stub resolvers
	// wait before they retry.
	defaultChaseTimeout = 2 * time.Second
)

// chases reports whether a query of type qtype for a CNAME's owner is
// answered with the chain: data types other than CNAME itself. ANY is
// answered by the CNAME RRset alone (RFC 1034 section 3.6.2: the CNAME
// matches it; RFC 8482); meta types and other query types are not chased.
func chases(qtype uint16) bool {
	return qtype != dnswire.TypeCNAME && qtype != dnswire.TypeOPT && (qtype < 128 || qtype > 255)
}

// chaseReply answers req, for a CNAME's owner (respond said actChase), with
// the CNAME chain and the records of its last target, packed to fit the
// transport. local and remote are the client connection's addresses, told
// to Forward.
//
// The response keeps the header of the CNAME answer (AA set, RA clear) and
// takes its rcode, authority and additional sections from the answer for
// the last name: NXDOMAIN with the zone's SOA for a missing target in the
// zone; Forward's rcode (NOERROR or NXDOMAIN) for one outside it, with the
// SOA of its negative answer when it has no records of the asked type
// (RFC 6604: the rcode is that of the last name of the chain). Records of
// Forward's answer are kept only along the chain from the target. When
// Forward fails (no answer in time, SERVFAIL, REFUSED, anything but
// NOERROR or NXDOMAIN) the chain is answered as far as it got, NOERROR: the
// CNAME alone for an ExternalName service, as without Forward, rather than
// a SERVFAIL that would turn an upstream's trouble into the service's. A
// loop, or a chain longer than maxChase targets, ends the chain the same
// way.
func (r *Resolver) chaseReply(req *dns.Msg, tcp bool, local, remote net.Addr) []byte {
	// The CNAME answer, unlimited in size: room for the rest is decided at
	// the end.
	first, act := r.replyTo(make([]byte, 0, dnswire.MinOut), req, true, true)
	resp := new(dns.Msg)
	if act != actAnswer || resp.Unpack(first) != nil || len(resp.Question) != 1 || len(resp.Answer) != 1 ||
		resp.Rcode != dns.RcodeSuccess || resp.Answer[0].Header().Rrtype != dns.TypeCNAME {
		// The index changed under the query: answer as without chasing.
		return r.plainReply(req, tcp)
	}
	qq := resp.Question[0]
	limit := dnswire.UDPLimit(false, 0)
	if opt := req.IsEdns0(); opt != nil {
		limit = dnswire.UDPLimit(true, opt.UDPSize())
	}
	if tcp {
		limit = dnswire.MaxMsgLen
	}

	var opt []dns.RR // the response's OPT record, if any
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = append(opt, rr)
		}
	}
	var extra []dns.RR // the additional records of the last name's answer
	seen := map[string]bool{dns.CanonicalName(qq.Name): true}
	target := resp.Answer[0].(*dns.CNAME).Target
	for range maxChase {
		key := dns.CanonicalName(target)
		if seen[key] {
			r.log.Debug("cname loop; answering the chain so far", "name", qq.Name, "target", target)
			break
		}
		seen[key] = true
		step, inZone := r.lookup(target, qq.Qtype, qq.Qclass)
		if !inZone {
			if r.forward != nil {
				r.chaseOutside(resp, target, req.CheckingDisabled, local, remote)
			}
			break
		}
		if step == nil {
			break
		}
		resp.Answer = append(resp.Answer, step.Answer...)
		if len(step.Answer) == 1 && step.Rcode == dns.RcodeSuccess {
			if c, ok := step.Answer[0].(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, target) {
				target = c.Target // another ExternalName service
				continue
			}
		}
		resp.Rcode, resp.Ns = step.Rcode, step.Ns
		for _, rr := range step.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		break
	}

	resp.Extra = append(extra, opt...)
	resp.Compress = true
	b, err := resp.Pack()
	if err == nil && len(b) > limit && len(extra) > 0 {
		// Without the additional section first, which needs no TC (RFC
		// 2181 section 9).
		resp.Extra = opt
		b, err = resp.Pack()
	}
	if err == nil && len(b) > limit {
		resp.Truncate(limit) // the records that fit, with TC
		resp.Compress = true
		b, err = resp.Pack()
	}
	if err != nil || len(b) > limit {
		r.log.Debug("cannot pack the cname chain; answering the cname alone", "name", qq.Name, "err", err)
		return r.plainReply(req, tcp)
	}
	return b
}

// plainReply answers req as if no CNAME were chased.
func (r *Resolver) plainReply(req *dns.Msg, tcp bool) []byte {
	out, act := r.replyTo(make([]byte, 0, dnswire.MinOut), req, tcp, true)
	if act != actAnswer {
		return nil
	}
	return out
}

// lookup answers a query for name (presentation form) from the index, a
// CNAME alone, and says whether name is in the cluster zone; the answer is
// nil for a name outside it, or one that is no valid name.
func (r *Resolver) lookup(name string, qtype, qclass uint16) (*dns.Msg, bool) {
	var nb [dnswire.MaxNameLen + 1]byte
	end, err := dns.PackDomainName(name, nb[:], 0, nil, false)
	if err != nil || end == 0 || end > dnswire.MaxNameLen {
		return nil, false
	}
	var kb [dnswire.MaxNameLen]byte
	key := kb[:end]
	for i, c := range nb[:end] {
		key[i] = dnswire.Lower(c)
	}
	if r.classify(key) != zoneCluster && r.idx.Load().outsideNode(key) == nil {
		return nil, false // custom records outside the zone answer as the zone's do
	}
	q := query{Query: dnswire.Query{Flags: dnswire.FlagQR, Name: nb[:end], Qtype: qtype, Qclass: qclass}, noChase: true}
	out, act := r.respond(make([]byte, 0, dnswire.MinOut), &q, true)
	m := new(dns.Msg)
	if act != actAnswer || m.Unpack(out) != nil {
		return nil, true
	}
	return m, true
}

// chaseOutside asks Forward about target, a name outside the zone, with
// resp's question type, and completes resp with the answer: the records
// along the chain from target, Forward's rcode, and the SOA of a negative
// answer. resp is left as it is if Forward fails.
func (r *Resolver) chaseOutside(resp *dns.Msg, target string, cd bool, local, remote net.Addr) {
	qtype := resp.Question[0].Qtype
	m := r.askForward(target, qtype, cd, local, remote)
	if m == nil {
		return
	}
	answer := follow(m.Answer, target, qtype)
	resp.Answer = append(resp.Answer, answer...)
	resp.Rcode = m.Rcode
	for _, rr := range answer {
		if rr.Header().Rrtype == qtype {
			return // positive: no authority
		}
	}
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			resp.Ns = append(resp.Ns, rr)
		}
	}
}

// askForward sends Forward a query for target with type qtype, RD set, CD
// as the client asked, no EDNS, and waits at most r.chaseTimeout for its
// answer: a reply to that query with rcode NOERROR or NXDOMAIN, else nil.
func (r *Resolver) askForward(target string, qtype uint16, cd bool, local, remote net.Addr) *dns.Msg {
	req := new(dns.Msg).SetQuestion(target, qtype) // RD set
	req.CheckingDisabled = cd
	// The first message written is the reply, nil for none. LocalAddr is
	// a TCP address, so that Forward does not cut its answer to a UDP
	// payload size; chaseReply fits the whole response to the client's.
	reply := make(chan []byte, 1)
	offer := func(b []byte) {
		select {
		case reply <- b:
		default:
		}
	}
	w := &dnswriter.Writer{Local: streamAddr(local), Remote: remote, Send: func(b []byte) (int, error) {
		offer(slices.Clone(b))
		return len(b), nil
	}}
	// Forward keeps req; the goroutine outlives the wait if Forward takes
	// longer, and its late answer is dropped.
	go func() {
		r.forward.ServeDNS(w, req)
		offer(nil)
	}()
	t := time.NewTimer(r.chaseTimeout)
	defer t.Stop()
	var b []byte
	select {
	case b = <-reply:
	case <-t.C:
		r.log.Debug("no answer from forward for a cname target in time", "target", target, "type", dns.Type(qtype))
		return nil
	}
	m := new(dns.Msg)
	switch {
	case b == nil:
		r.log.Debug("forward did not answer for a cname target", "target", target, "type", dns.Type(qtype))
		return nil
	case m.Unpack(b) != nil, !m.Response, m.Id != req.Id, len(m.Question) != 1,
		m.Question[0].Qtype != qtype, !strings.EqualFold(m.Question[0].Name, target):
		r.log.Debug("forward's answer for a cname target does not match", "target", target, "type", dns.Type(qtype))
		return nil
	case m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError:
		r.log.Debug("forward failed for a cname target", "target", target, "type", dns.Type(qtype),
			"rcode", dns.RcodeToString[m.Rcode])
		return nil
	}
	return m
}

// follow returns the records of rrs along the chain from name: its records
// of type qtype, or its CNAME and those of the target, and so on for at
// most maxChase targets.
func follow(rrs []dns.RR, name string, qtype uint16) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for range maxChase + 1 {
		key := dns.CanonicalName(name)
		if seen[key] {
			break
		}
		seen[key] = true
		next := ""
		for _, rr := range rrs {
			h := rr.Header()
			if h.Class != dns.ClassINET || dns.CanonicalName(h.Name) != key {
				continue
			}
			switch c, ok := rr.(*dns.CNAME); {
			case h.Rrtype == qtype:
				out = append(out, rr)
			case ok && next == "":
				out = append(out, rr)
				next = c.Target
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return out
}

// streamAddr returns a as a TCP address.
func streamAddr(a net.Addr) net.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a
	case *net.UDPAddr:
		return &net.TCPAddr{IP: a.IP, Port: a.Port, Zone: a.Zone}
	}
	return &net.TCPAddr{IP: net.IPv6loopback}
}
