package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
)

// Handler answers the queries a server reads. *resolver.Resolver is one.
type Handler interface {
	// ServeDNS answers a query unpacked by miekg/dns, writing to w: every
	// TCP query, and the UDP queries ReplyUDP leaves to it, each on a
	// goroutine of its own, since their answers may wait on an upstream.
	dns.Handler
	// AnswerUDP writes into out, of capacity ResponseBufSize, the response
	// to the raw UDP query msg and returns it, without allocating; or
	// returns false, having written nothing, for a query it leaves to the
	// general path.
	AnswerUDP(out, msg []byte) ([]byte, bool)
	// ReplyUDP answers req, a UDP query unpacked by miekg/dns, into out if
	// that takes no wait: it returns the response (nil for none) and true.
	// It returns false for a query whose answer may wait on an upstream,
	// which ServeDNS then answers.
	ReplyUDP(out []byte, req *dns.Msg) ([]byte, bool)
	// Busy returns the response to req, a query ReplyUDP left to ServeDNS,
	// when too many of those are being answered already; nil for none.
	Busy(out []byte, req *dns.Msg) []byte
}

// ResponseBufSize is the capacity of the buffers UDP responses are written
// into: the largest UDP response, and room for the general path.
const ResponseBufSize = dnswire.EDNSPayload + dnswire.MinOut

// Config is what a server needs besides its sockets.
type Config struct {
	Handler Handler
	// Logger receives the server's logs; none when nil.
	Logger *slog.Logger
	// NoBatch reads and writes one datagram per system call, as on
	// systems without recvmmsg: for tests and comparisons.
	NoBatch bool
	// MiekgUDP serves UDP with miekg/dns's server, through ServeDNS,
	// instead of the fast path: for comparisons.
	MiekgUDP bool
	// Counters counts the queries and responses; when nil they are
	// counted into Counters of the server's own, which nothing reads.
	Counters *Counters
}

// shutdownGrace bounds how long Serve waits for TCP connections, and for
// queries ServeDNS is answering, to finish after ctx is done.
const shutdownGrace = 5 * time.Second

// ListenAndServe serves DNS over UDP and TCP on addr (host:port; port 0
// picks a port free for both) until ctx is done, then shuts both servers down
// and returns nil. It returns an error naming addr if it cannot listen, or if
// a server fails. ready, if not nil, is called once both servers accept
// queries.
//
// UDP queries are read by UDPSockets() sockets sharing addr, and answered
// through the fast path (see udp.go); TCP is served by miekg/dns's server,
// through ServeDNS.
func ListenAndServe(ctx context.Context, addr string, cfg Config, ready func()) error {
	socks, err := Listen(ctx, addr, UDPSockets())
	if err != nil {
		return fmt.Errorf("dnsserver: cannot serve DNS on %s: %w", addr, err)
	}
	if err := Serve(ctx, socks, cfg, ready); err != nil {
		return fmt.Errorf("dnsserver: serving DNS on %s: %w", addr, err)
	}
	return nil
}

// UDPSockets is how many UDP sockets ListenAndServe reads from: GOMAXPROCS
// where SO_REUSEPORT lets them share an address (Linux), else one.
func UDPSockets() int {
	if !reusePort {
		return 1
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// Sockets are the listening sockets of one address.
type Sockets struct {
	UDP []*net.UDPConn
	TCP net.Listener
}

// Listen opens the TCP socket and n UDP sockets of addr (host:port; port 0
// picks a port free for both).
func Listen(ctx context.Context, addr string, n int) (Sockets, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Sockets{}, err
	}
	var lc net.ListenConfig
	if port != "0" {
		// TCP first: a port taken by another server fails here, before
		// SO_REUSEPORT could let the UDP sockets share it.
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return Sockets{}, err
		}
		pcs, err := listenUDP(ctx, host, port, n)
		if err != nil {
			ln.Close()
			return Sockets{}, err
		}
		return Sockets{UDP: pcs, TCP: ln}, nil
	}
	// Port 0: let TCP pick a port, and take the same for UDP if it is free.
	for range 20 {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return Sockets{}, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pcs, err := listenUDP(ctx, host, strconv.Itoa(p), n)
		if err == nil {
			return Sockets{UDP: pcs, TCP: ln}, nil
		}
		ln.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return Sockets{}, err
		}
	}
	return Sockets{}, errors.New("no port free for both UDP and TCP")
}

// listenUDP opens n UDP sockets of host:port.
func listenUDP(ctx context.Context, host, port string, n int) ([]*net.UDPConn, error) {
	ip := net.ParseIP(host)
	lc := net.ListenConfig{Control: udpControl(host == "" || ip != nil && ip.IsUnspecified())}
	var pcs []*net.UDPConn
	for range n {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
		if err != nil {
			for _, pc := range pcs {
				pc.Close()
			}
			return nil, err
		}
		uc := pc.(*net.UDPConn)
		// Room for bursts; the kernel caps it at net.core.rmem_max.
		_ = uc.SetReadBuffer(4 << 20)
		pcs = append(pcs, uc)
	}
	return pcs, nil
}

// AcceptQuery is the servers' first check of a message, on its header only:
// responses are dropped; opcodes other than QUERY (NOTIFY included: kdnsd
// has no secondaries) get NOTIMP; the rest as dns.DefaultMsgAcceptFunc
// (FORMERR unless exactly one question and at most one answer, one authority
// and two additional records).
func AcceptQuery(h dns.Header) dns.MsgAcceptAction {
	if h.Bits&dnswire.FlagQR != 0 {
		return dns.MsgIgnore
	}
	if int(h.Bits>>11)&0xf != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	return dns.DefaultMsgAcceptFunc(h)
}

// runner is one of the servers Serve runs.
type runner struct {
	net  string
	run  func() error
	stop func(context.Context) error
}

// Serve runs a TCP server and the UDP fast path on socks until ctx is done,
// then shuts them down and returns nil, or until one of them fails. It
// closes socks. ready, if not nil, is called once both servers accept
// queries.
func Serve(ctx context.Context, socks Sockets, cfg Config, ready func()) error {
	pcs, ln := socks.UDP, socks.TCP
	if len(pcs) == 0 || ln == nil || cfg.Handler == nil {
		return errors.New("no UDP socket, TCP listener or handler to serve")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("serving dns", "udp", pcs[0].LocalAddr(), "udp_sockets", len(pcs), "tcp", ln.Addr())
	counters := cfg.Counters
	if counters == nil {
		counters = new(Counters)
	}
	started := make(chan struct{}, len(pcs)+1)
	notify := func() { started <- struct{}{} }
	th := countingHandler{cfg.Handler, counters.newBlock(transportTCP, false)}
	tcp := &dns.Server{Listener: ln, Handler: th, MsgAcceptFunc: th.acceptQuery, NotifyStartedFunc: notify}
	runners := []runner{{"tcp", tcp.ActivateAndServe, tcp.ShutdownContext}}
	var us *udpServer
	if cfg.MiekgUDP {
		for _, pc := range pcs {
			uh := countingHandler{cfg.Handler, counters.newBlock(transportUDP, false)}
			s := &dns.Server{PacketConn: pc, Handler: uh, UDPSize: dns.DefaultMsgSize, MsgAcceptFunc: uh.acceptQuery, NotifyStartedFunc: notify}
			runners = append(runners, runner{"udp", s.ActivateAndServe, s.ShutdownContext})
		}
	} else {
		us = newUDPServer(cfg.Handler, log, pcs, counters)
		serveUDP := us.serveBatched
		if cfg.NoBatch {
			serveUDP = us.serve
		}
		for _, pc := range pcs {
			b := counters.newBlock(transportUDP, true)
			runners = append(runners, runner{"udp",
				func() error { notify(); return serveUDP(pc, b) },
				func(context.Context) error { return pc.Close() }})
		}
	}
	closeAll := func() {
		ln.Close()
		for _, pc := range pcs {
			pc.Close()
		}
	}

	type result struct {
		i   int
		err error
	}
	done := make(chan result, len(runners))
	for i, s := range runners {
		go func() { done <- result{i, s.run()} }()
	}
	running := make([]bool, len(runners))
	for i := range running {
		running[i] = true
	}
	waitAll := func() {
		for i := range running {
			if running[i] {
				<-done
			}
		}
	}

	// All must have started before any can be shut down.
	for n := 0; n < len(runners); {
		select {
		case <-started:
			n++
		case res := <-done:
			// A server failed to start: closing the sockets makes the
			// others return whether or not they started.
			running[res.i] = false
			closeAll()
			waitAll()
			return fmt.Errorf("%s: %w", runners[res.i].net, orClosed(res.err))
		}
	}
	if ready != nil {
		ready()
	}

	var failed error
	select {
	case <-ctx.Done():
	case res := <-done:
		running[res.i] = false
		failed = fmt.Errorf("%s: %w", runners[res.i].net, orClosed(res.err))
		log.Error("dns server failed; stopping", "err", failed)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for i, s := range runners {
		if running[i] {
			if err := s.stop(sctx); err != nil {
				log.Warn("dns server shutdown", "net", s.net, "err", err)
			}
		}
	}
	closeAll()
	waitAll()
	if us != nil {
		// Forwarded queries still being answered, within the grace.
		fwdDone := make(chan struct{})
		go func() { us.fwdWG.Wait(); close(fwdDone) }()
		select {
		case <-fwdDone:
		case <-sctx.Done():
		}
	}
	return failed
}

// orClosed turns the nil a server returns when closed under it into an error.
func orClosed(err error) error {
	if err == nil {
		return errors.New("server stopped")
	}
	return err
}
