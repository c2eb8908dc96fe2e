package dnsserver

import (
	"encoding/binary"
	"errors"
	"log/slog"
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
// sockets at once (SO_REUSEPORT, one per GOMAXPROCS, on Linux), and has the
// Handler answer the ordinary ones straight from the raw message
// (AnswerUDP), without allocating. Anything else takes the general path:
// unpacked by miekg/dns and answered by ReplyUDP, or, when the answer may
// wait on an upstream, by ServeDNS on a goroutine of its own.

// maxForwarding bounds the queries of one UDP server that ServeDNS answers
// at once (those whose answers may wait on an upstream); more get
// Handler.Busy's answer.
const maxForwarding = 4096

// udpServer serves the fast path on a set of UDP sockets of one address.
type udpServer struct {
	h       Handler
	log     *slog.Logger
	conns   []*net.UDPConn
	pktinfo bool // answer from the address each query was sent to
	fwd     chan struct{}
	fwdWG   sync.WaitGroup
	// fwdCount counts the responses ServeDNS writes to forwarded queries,
	// from goroutines of their own.
	fwdCount *block
}

func newUDPServer(h Handler, log *slog.Logger, conns []*net.UDPConn, c *Counters) *udpServer {
	s := &udpServer{h: h, log: log, conns: conns, fwd: make(chan struct{}, maxForwarding), fwdCount: c.newBlock(transportUDP, true)}
	if a, ok := conns[0].LocalAddr().(*net.UDPAddr); ok && a.IP.IsUnspecified() {
		s.pktinfo = true
	}
	return s
}

// serve reads and answers queries on c until c is closed, counting them
// into cnt, a block no other goroutine writes.
func (s *udpServer) serve(c *net.UDPConn, cnt *block) error {
	var (
		buf  = make([]byte, dnswire.MaxMsgLen)
		out  = make([]byte, 0, ResponseBufSize)
		oob  = make([]byte, 128)
		woob = make([]byte, 128)
	)
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Debug("reading dns query", "err", err)
			time.Sleep(time.Millisecond) // do not spin on a lasting error
			continue
		}
		msg := buf[:n]
		if n < dnswire.HeaderLen || msg[2]&0x80 != 0 {
			continue // no header, or a response: never answered
		}
		cnt.request(msg)
		wo := woob[:0]
		if s.pktinfo {
			wo = replyOOB(woob, oob[:oobn])
		}
		resp, ok := s.h.AnswerUDP(out, msg)
		if !ok {
			cnt.general.Add(1)
			resp = s.general(c, msg, from, wo, out)
		}
		if resp != nil {
			cnt.response(resp)
			if _, _, err := c.WriteMsgUDPAddrPort(resp, wo, from); err != nil {
				s.log.Debug("writing dns response", "remote", from, "err", err)
			}
		}
	}
}

// general answers msg as miekg/dns's server would: header check,
// unpacking, then Handler.ReplyUDP. It returns the response to send, if any.
// A query ReplyUDP leaves to ServeDNS, whose answer may wait on an
// upstream, is answered on a goroutine of its own; beyond maxForwarding of
// those, it gets Handler.Busy's answer.
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
	switch AcceptQuery(h) {
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
	if resp, now := s.h.ReplyUDP(out, req); now {
		return resp
	}
	select {
	case s.fwd <- struct{}{}:
	default:
		s.log.Debug("too many queries waiting on an upstream; answering without", "remote", from)
		return s.h.Busy(out, req)
	}
	oob := slices.Clone(wo)
	w := &dnswriter.Writer{Local: c.LocalAddr(), Remote: net.UDPAddrFromAddrPort(from), Send: func(b []byte) (int, error) {
		if len(b) >= dnswire.HeaderLen {
			s.fwdCount.response(b)
		}
		n, _, err := c.WriteMsgUDPAddrPort(b, oob, from)
		return n, err
	}}
	s.fwdWG.Go(func() {
		defer func() { <-s.fwd }()
		s.h.ServeDNS(w, req)
	})
	return nil
}
