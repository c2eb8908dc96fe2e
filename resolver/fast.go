package resolver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/internal/dnswriter"
)

// The UDP fast path. ListenAndServe reads UDP queries itself, several
// sockets at once (SO_REUSEPORT, one per GOMAXPROCS, on Linux), and answers
// the ordinary ones (one question, no records but an OPT, simple labels)
// straight from the raw message: dnswire.ParseQuery fills a query, respond writes the
// answer, as for ServeDNS, without allocating. Anything else takes the
// general path: unpacked by miekg/dns and answered by the code behind
// ServeDNS, forwarding included.

// fastReply answers the raw UDP request msg into out (of capacity at least
// dnswire.MinOut). It returns false, having written nothing, for what the general
// path must handle.
func (r *Resolver) fastReply(out, msg []byte) ([]byte, bool) {
	var q query
	if !dnswire.ParseQuery(msg, &q.Query) {
		return nil, false
	}
	resp, act := r.respond(out, &q, false)
	return resp, act == actAnswer
}

// maxForwarding bounds the queries of one UDP server being forwarded, or
// having a CNAME target chased through Forward, at once; more get SERVFAIL
// (a chase: the CNAME alone).
const maxForwarding = 4096

// udpServer serves the fast path on a set of UDP sockets of one address.
type udpServer struct {
	r       *Resolver
	conns   []*net.UDPConn
	pktinfo bool // answer from the address each query was sent to
	fwd     chan struct{}
	fwdWG   sync.WaitGroup
}

func (r *Resolver) newUDPServer(conns []*net.UDPConn) *udpServer {
	s := &udpServer{r: r, conns: conns, fwd: make(chan struct{}, maxForwarding)}
	if a, ok := conns[0].LocalAddr().(*net.UDPAddr); ok && a.IP.IsUnspecified() {
		s.pktinfo = true
	}
	return s
}

// serve reads and answers queries on c until c is closed.
func (s *udpServer) serve(c *net.UDPConn) error {
	var (
		buf  = make([]byte, dnswire.MaxMsgLen)
		out  = make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
		oob  = make([]byte, 128)
		woob = make([]byte, 128)
	)
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.r.log.Debug("reading dns query", "err", err)
			time.Sleep(time.Millisecond) // do not spin on a lasting error
			continue
		}
		msg := buf[:n]
		if n < dnswire.HeaderLen || msg[2]&0x80 != 0 {
			continue // no header, or a response: never answered
		}
		wo := woob[:0]
		if s.pktinfo {
			wo = replyOOB(woob, oob[:oobn])
		}
		resp, ok := s.r.fastReply(out, msg)
		if !ok {
			resp = s.general(c, msg, from, wo, out)
		}
		if resp != nil {
			if _, _, err := c.WriteMsgUDPAddrPort(resp, wo, from); err != nil {
				s.r.log.Debug("writing dns response", "remote", from, "err", err)
			}
		}
	}
}

// general answers msg as miekg/dns's server and ServeDNS would: header
// check, unpacking, reply. It returns the response to send, if any; a query
// to forward is handed to Config.Forward on a goroutine of its own, and so
// is a CNAME chase that may ask Forward (one that cannot is answered at
// once). Beyond maxForwarding of them, a forwarded query gets SERVFAIL and
// a chase the CNAME alone.
func (s *udpServer) general(c *net.UDPConn, msg []byte, from netip.AddrPort, wo, out []byte) []byte {
	h := dns.Header{
		Id:      binary.BigEndian.Uint16(msg),
		Bits:    binary.BigEndian.Uint16(msg[2:]),
		Qdcount: binary.BigEndian.Uint16(msg[4:]),
		Ancount: binary.BigEndian.Uint16(msg[6:]),
		Nscount: binary.BigEndian.Uint16(msg[8:]),
		Arcount: binary.BigEndian.Uint16(msg[10:]),
	}
	reject := func(rcode int) []byte {
		m := dnswire.Response{Out: out[:dnswire.HeaderLen], ID: h.Id, Flags: dnswire.ResponseFlags(h.Bits), Rcode: rcode}
		return m.Done()
	}
	switch acceptQuery(h) {
	case dns.MsgIgnore:
		return nil
	case dns.MsgRejectNotImplemented:
		return reject(dns.RcodeNotImplemented)
	case dns.MsgReject:
		return reject(dns.RcodeFormatError)
	}
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil {
		return reject(dns.RcodeFormatError)
	}
	resp, act := s.r.reply(out, req, false)
	switch act {
	case actAnswer:
		return resp
	case actChase:
		if s.r.forward == nil {
			// A chain within the zone: nothing to wait for.
			return s.r.chaseReply(req, false, c.LocalAddr(), net.UDPAddrFromAddrPort(from))
		}
		fallthrough
	case actForward:
		select {
		case s.fwd <- struct{}{}:
		default:
			if act == actChase {
				s.r.log.Debug("too many queries being forwarded; cname not chased", "remote", from)
				return s.r.plainReply(req, false)
			}
			s.r.log.Debug("too many queries being forwarded; SERVFAIL", "remote", from)
			m := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
			b, err := m.PackBuffer(out)
			if err != nil {
				return nil
			}
			return b
		}
		oob := slices.Clone(wo)
		w := &dnswriter.Writer{Local: c.LocalAddr(), Remote: net.UDPAddrFromAddrPort(from), Send: func(b []byte) (int, error) {
			n, _, err := c.WriteMsgUDPAddrPort(b, oob, from)
			return n, err
		}}
		s.fwdWG.Go(func() {
			defer func() { <-s.fwd }()
			if act == actChase {
				if b := s.r.chaseReply(req, false, w.LocalAddr(), w.RemoteAddr()); b != nil {
					if _, err := w.Write(b); err != nil {
						s.r.log.Debug("writing dns response", "remote", from, "err", err)
					}
				}
				return
			}
			s.r.forward.ServeDNS(w, req)
		})
	}
	return nil
}
