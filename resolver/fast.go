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

	"github.com/kdnsd/kdnsd/internal/dnswriter"
)

// The UDP fast path. ListenAndServe reads UDP queries itself, several
// sockets at once (SO_REUSEPORT, one per GOMAXPROCS, on Linux), and answers
// the ordinary ones (one question, no records but an OPT, simple labels)
// straight from the raw message: parseQuery fills a query, respond writes the
// answer, as for ServeDNS, without allocating. Anything else takes the
// general path: unpacked by miekg/dns and answered by the code behind
// ServeDNS, forwarding included.

// parseQuery reads an ordinary query from msg into q, whose name then points
// into msg. It returns false for anything it leaves to the general path:
// responses, opcodes other than QUERY, other section counts, labels with
// other octets than letters, digits, hyphens and underscores, compression,
// records other than one OPT, OPT options other than NSID, COOKIE and
// PADDING, trailing octets. What it accepts, miekg/dns unpacks to a message
// that reply turns into the same query.
func parseQuery(msg []byte, q *query) bool {
	if len(msg) < headerLen+5 {
		return false
	}
	bits := binary.BigEndian.Uint16(msg[2:])
	if bits&flagQR != 0 || bits>>11&0xf != dns.OpcodeQuery ||
		binary.BigEndian.Uint16(msg[4:]) != 1 || binary.BigEndian.Uint16(msg[6:]) != 0 ||
		binary.BigEndian.Uint16(msg[8:]) != 0 {
		return false
	}
	ar := binary.BigEndian.Uint16(msg[10:])
	if ar > 1 {
		return false
	}
	i := headerLen
	for {
		if i >= len(msg) {
			return false
		}
		l := int(msg[i])
		if l == 0 {
			i++
			break
		}
		if l > maxLabelLen || i+1+l >= len(msg) {
			return false
		}
		for _, c := range msg[i+1 : i+1+l] {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		i += 1 + l
	}
	if i-headerLen > maxNameLen || i+4 > len(msg) {
		return false
	}
	*q = query{
		id:     binary.BigEndian.Uint16(msg),
		flags:  responseFlags(bits),
		name:   msg[headerLen:i],
		qtype:  binary.BigEndian.Uint16(msg[i:]),
		qclass: binary.BigEndian.Uint16(msg[i+2:]),
	}
	i += 4
	if ar == 1 {
		// An OPT record: root owner, type, payload size, extended RCODE,
		// version, flags, RDLENGTH, options.
		if i+11 > len(msg) || msg[i] != 0 || binary.BigEndian.Uint16(msg[i+1:]) != typeOPT {
			return false
		}
		q.opt = true
		q.udpSize = binary.BigEndian.Uint16(msg[i+3:])
		q.version = msg[i+6]
		q.do = msg[i+7]&0x80 != 0
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

// fastReply answers the raw UDP request msg into out (of capacity at least
// minOut). It returns false, having written nothing, for what the general
// path must handle.
func (r *Resolver) fastReply(out, msg []byte) ([]byte, bool) {
	var q query
	if !parseQuery(msg, &q) {
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
		buf  = make([]byte, maxMsgLen)
		out  = make([]byte, 0, ednsPayload+minOut)
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
		if n < headerLen || msg[2]&0x80 != 0 {
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
		m := response{out: out[:headerLen], id: h.Id, flags: responseFlags(h.Bits), rcode: rcode}
		return m.done()
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
