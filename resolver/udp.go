package resolver

import (
	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
)

// The resolver's side of package dnsserver's UDP server: the fast path
// (AnswerUDP), the general path's answers that take no wait (ReplyUDP), and
// what an overloaded server answers (Busy). ServeDNS answers the rest.

// AnswerUDP answers the raw UDP query msg into out (of capacity at least
// dnswire.MinOut) when dnswire.ParseQuery takes it and no forwarding or CNAME
// chase is needed, without allocating. It returns false, having written
// nothing, for what the general path must handle.
func (r *Resolver) AnswerUDP(out, msg []byte) ([]byte, bool) {
	var q query
	if !dnswire.ParseQuery(msg, &q.Query) {
		return nil, false
	}
	resp, act := r.respond(out, &q, false)
	return resp, act == actAnswer
}

// ReplyUDP answers req, a UDP query, into out, and returns true, unless the
// answer may wait on Config.Forward: a query to forward, or a CNAME chase
// when Forward is set. Those it leaves to ServeDNS. A chase that stays in
// the zone is answered at once.
func (r *Resolver) ReplyUDP(out []byte, req *dns.Msg) ([]byte, bool) {
	resp, act := r.reply(out, req, false)
	switch act {
	case actAnswer:
		return resp, true
	case actChase:
		if r.forward == nil {
			// A chain within the zone: nothing to wait for, and no
			// connection to tell Forward about.
			return r.chaseReply(req, false, nil, nil), true
		}
		return nil, false
	case actForward:
		return nil, false
	}
	return nil, true
}

// Busy answers req, a UDP query ReplyUDP left to ServeDNS, when the server
// is answering too many of those already: the CNAME alone for a chase,
// SERVFAIL for a query to forward.
func (r *Resolver) Busy(out []byte, req *dns.Msg) []byte {
	if _, act := r.reply(out, req, false); act == actChase {
		r.log.Debug("too many queries being forwarded; cname not chased", "name", req.Question[0].Name)
		return r.plainReply(req, false)
	}
	r.log.Debug("too many queries being forwarded; SERVFAIL", "name", req.Question[0].Name)
	b, err := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure).PackBuffer(out)
	if err != nil {
		return nil
	}
	return b
}
