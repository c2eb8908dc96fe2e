package dnsserver

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
)

// Query counting. Every goroutine that reads queries from a socket (one
// per UDP socket) counts into a block of its own, so that the hot path
// never writes a cache line another core writes: an uncontended atomic add
// costs a few nanoseconds, a contended one ten times that and more with
// every core added. Blocks are summed only when read (Counters.Counts, at
// scrape time). TCP connections, and the forwarded UDP queries whose
// answers are written from goroutines of their own, share a block per
// server: their answers wait on a connection or an upstream anyway.

// What is counted one by one; the rest counts as "other".
var (
	countedTypes  = [...]uint16{dnswire.TypeA, dnswire.TypeAAAA, dnswire.TypeSRV, dnswire.TypePTR, dnswire.TypeTXT}
	countedRcodes = [...]int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError}
)

// Label values of the counts, in the order of Counts' arrays.
var (
	QueryTypes = labels(countedTypes[:], dns.TypeToString)
	Rcodes     = labels(countedRcodes[:], dns.RcodeToString)
	Transports = [...]string{"udp", "tcp"}
)

// Indexes into Transports.
const (
	transportUDP = iota
	transportTCP
)

// labels names counted, then "other".
func labels[T comparable](counted []T, name map[T]string) []string {
	var l []string
	for _, v := range counted {
		l = append(l, name[v])
	}
	return append(l, "other")
}

// index returns the index of v in counted; len(counted), "other", if it is
// not there.
func index[T comparable](counted []T, v T) int {
	for i, c := range counted {
		if c == v {
			return i
		}
	}
	return len(counted)
}

// counts are the counters of one block.
type counts struct {
	requests  [len(countedTypes) + 1]atomic.Uint64
	responses [len(countedRcodes) + 1]atomic.Uint64
	// general counts the UDP queries the fast path left to the general
	// path; the others took the fast path.
	general atomic.Uint64
}

// blockAlign is what a block is padded to: two cache lines, since x86
// processors fetch lines in adjacent pairs.
const blockAlign = 128

// block is the counters one goroutine (or one shared path) writes. Its
// size is a multiple of blockAlign, and the allocator places objects of
// such a size class at multiples of it, so that no two blocks share a
// line.
type block struct {
	counts
	transport int  // index into Transports
	fastPath  bool // a reader of the fast path's server: general counts
	_         [blockAlign - (unsafe.Sizeof(counts{})+unsafe.Sizeof(0)+unsafe.Sizeof(false))%blockAlign]byte
}

// request counts the query msg, of at least a header, by its question type.
func (b *block) request(msg []byte) {
	b.requests[index(countedTypes[:], questionType(msg))].Add(1)
}

// response counts the response resp, of at least a header, by its rcode.
func (b *block) response(resp []byte) {
	b.responses[index(countedRcodes[:], responseRcode(resp))].Add(1)
}

// questionType returns the type of the first question of msg, a message of
// at least a header, or 0 if it has none that can be read.
func questionType(msg []byte) uint16 {
	if binary.BigEndian.Uint16(msg[4:]) == 0 {
		return 0
	}
	i := dnswire.HeaderLen
	for i < len(msg) {
		l := int(msg[i])
		switch {
		case l == 0:
			i++
		case l&0xc0 == 0xc0: // a compression pointer ends the name
			i += 2
		case l&0xc0 == 0:
			i += 1 + l
			continue
		default:
			return 0
		}
		if i+2 > len(msg) {
			return 0
		}
		return binary.BigEndian.Uint16(msg[i:])
	}
	return 0
}

// optLen is the length of an OPT record without options, which is how
// every response kdnsd writes itself ends when it has one (dnswire.Response.Done).
const optLen = 11

// responseRcode returns the rcode of resp, a message of at least a header:
// the header's four bits, and the upper eight of an extended rcode (BADVERS)
// if resp ends with an OPT record without options. The OPT record of a
// response that miekg/dns packed with options is not looked for: its rcode
// counts by its lower four bits.
func responseRcode(resp []byte) int {
	rcode := int(resp[3] & 0xf)
	if n := len(resp); rcode == 0 && binary.BigEndian.Uint16(resp[10:]) > 0 && n >= dnswire.HeaderLen+optLen {
		opt := resp[n-optLen:]
		if opt[0] == 0 && binary.BigEndian.Uint16(opt[1:]) == dnswire.TypeOPT && opt[9] == 0 && opt[10] == 0 {
			rcode |= int(opt[5]) << 4
		}
	}
	return rcode
}

// Counters counts the queries of the servers it is given to (Config) and
// their responses, by type, rcode and transport. The zero value is ready
// to use.
type Counters struct {
	mu     sync.Mutex
	blocks []*block
}

// newBlock returns a block of c, counting queries of transport t; on the
// fast path's server if fastPath.
func (c *Counters) newBlock(t int, fastPath bool) *block {
	b := &block{transport: t, fastPath: fastPath}
	c.mu.Lock()
	c.blocks = append(c.blocks, b)
	c.mu.Unlock()
	return b
}

// Counts are the totals of Counters, since it was made.
type Counts struct {
	// Requests counts the queries read, by transport (index into
	// Transports) and type (QueryTypes): every message but those shorter
	// than a header and responses, which are dropped unanswered. A TCP
	// message that miekg/dns cannot unpack is not counted.
	Requests [len(Transports)][len(countedTypes) + 1]uint64
	// Responses counts the responses written, by transport and rcode
	// (Rcodes).
	Responses [len(Transports)][len(countedRcodes) + 1]uint64
	// FastPath and GeneralPath split the UDP queries of the fast path's
	// server (not of Config.MiekgUDP's) by the path that answered them:
	// Handler.AnswerUDP without allocating, or the general path.
	FastPath, GeneralPath uint64
}

// Counts sums the blocks of c.
func (c *Counters) Counts() Counts {
	c.mu.Lock()
	blocks := c.blocks
	c.mu.Unlock()
	var s Counts
	for _, b := range blocks {
		// general before requests: a query is counted as a request before
		// it is counted as general, so FastPath cannot come out negative.
		general := b.general.Load()
		var requests uint64
		for i := range b.requests {
			n := b.requests[i].Load()
			requests += n
			s.Requests[b.transport][i] += n
		}
		for i := range b.responses {
			s.Responses[b.transport][i] += b.responses[i].Load()
		}
		if b.fastPath {
			s.GeneralPath += general
			s.FastPath += requests - general
		}
	}
	return s
}

// countingHandler counts the queries a miekg/dns server hands to Handler
// (TCP, and UDP with Config.MiekgUDP) and the responses written to them.
type countingHandler struct {
	Handler
	b *block
}

func (h countingHandler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	var qtype uint16
	if len(req.Question) > 0 {
		qtype = req.Question[0].Qtype
	}
	h.b.requests[index(countedTypes[:], qtype)].Add(1)
	h.Handler.ServeDNS(countingWriter{w, h.b}, req)
}

// acceptQuery is AcceptQuery, counting the messages it refuses, to which
// the miekg/dns server answers without calling the handler.
func (h countingHandler) acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	a := AcceptQuery(dh)
	switch a {
	case dns.MsgReject:
		h.b.requests[len(countedTypes)].Add(1)
		h.b.responses[index(countedRcodes[:], dns.RcodeFormatError)].Add(1)
	case dns.MsgRejectNotImplemented:
		h.b.requests[len(countedTypes)].Add(1)
		h.b.responses[len(countedRcodes)].Add(1)
	}
	return a
}

// countingWriter counts the responses written through it.
type countingWriter struct {
	dns.ResponseWriter
	b *block
}

func (w countingWriter) WriteMsg(m *dns.Msg) error {
	w.b.responses[index(countedRcodes[:], m.Rcode)].Add(1)
	return w.ResponseWriter.WriteMsg(m)
}

func (w countingWriter) Write(resp []byte) (int, error) {
	if len(resp) >= dnswire.HeaderLen {
		w.b.response(resp)
	}
	return w.ResponseWriter.Write(resp)
}
