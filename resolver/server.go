package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// shutdownGrace bounds how long ListenAndServe waits for TCP connections to
// finish after ctx is done.
const shutdownGrace = 5 * time.Second

// ListenAndServe serves DNS over UDP and TCP on addr (host:port; port 0
// picks a port free for both) until ctx is done, then shuts both servers down
// and returns nil. It returns an error naming addr if it cannot listen, or if
// a server fails. ready, if not nil, is called once both servers accept
// queries.
//
// UDP queries are read by GOMAXPROCS sockets sharing addr (SO_REUSEPORT; one
// socket where that is not supported), and answered through the fast path
// (see fast.go); TCP is served by miekg/dns's server, through ServeDNS.
func (r *Resolver) ListenAndServe(ctx context.Context, addr string, ready func()) error {
	pcs, ln, err := listen(ctx, addr, udpSockets())
	if err != nil {
		return fmt.Errorf("resolver: cannot serve DNS on %s: %w", addr, err)
	}
	r.log.Info("serving dns", "udp", pcs[0].LocalAddr(), "udp_sockets", len(pcs), "tcp", ln.Addr())
	if err := r.serve(ctx, pcs, ln, ready); err != nil {
		return fmt.Errorf("resolver: serving DNS on %s: %w", addr, err)
	}
	return nil
}

// udpSockets is how many UDP sockets ListenAndServe reads from.
func udpSockets() int {
	if !reusePort {
		return 1
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// listen opens the TCP socket and n UDP sockets of addr.
func listen(ctx context.Context, addr string, n int) ([]*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	var lc net.ListenConfig
	if port != "0" {
		// TCP first: a port taken by another server fails here, before
		// SO_REUSEPORT could let the UDP sockets share it.
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		pcs, err := listenUDP(ctx, host, port, n)
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		return pcs, ln, nil
	}
	// Port 0: let TCP pick a port, and take the same for UDP if it is free.
	for range 20 {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pcs, err := listenUDP(ctx, host, strconv.Itoa(p), n)
		if err == nil {
			return pcs, ln, nil
		}
		ln.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("no port free for both UDP and TCP")
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

// acceptQuery is the servers' first check of a message, on its header only:
// responses are dropped; opcodes other than QUERY (NOTIFY included: kdnsd
// has no secondaries) get NOTIMP; the rest as dns.DefaultMsgAcceptFunc
// (FORMERR unless exactly one question and at most one answer, one authority
// and two additional records).
func acceptQuery(h dns.Header) dns.MsgAcceptAction {
	if h.Bits&flagQR != 0 {
		return dns.MsgIgnore
	}
	if int(h.Bits>>11)&0xf != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	return dns.DefaultMsgAcceptFunc(h)
}

// runner is one of the servers serve runs.
type runner struct {
	net  string
	run  func() error
	stop func(context.Context) error
}

// serve runs a TCP server on ln and the UDP fast path on pcs until ctx is
// done or one of them fails. It closes pcs and ln.
func (r *Resolver) serve(ctx context.Context, pcs []*net.UDPConn, ln net.Listener, ready func()) error {
	started := make(chan struct{}, len(pcs)+1)
	notify := func() { started <- struct{}{} }
	tcp := &dns.Server{Listener: ln, Handler: r, MsgAcceptFunc: acceptQuery, NotifyStartedFunc: notify}
	runners := []runner{{"tcp", tcp.ActivateAndServe, tcp.ShutdownContext}}
	var us *udpServer
	if r.miekgUDP {
		for _, pc := range pcs {
			s := &dns.Server{PacketConn: pc, Handler: r, UDPSize: dns.DefaultMsgSize, MsgAcceptFunc: acceptQuery, NotifyStartedFunc: notify}
			runners = append(runners, runner{"udp", s.ActivateAndServe, s.ShutdownContext})
		}
	} else {
		us = r.newUDPServer(pcs)
		serveUDP := us.serveBatched
		if r.noBatch {
			serveUDP = us.serve
		}
		for _, pc := range pcs {
			runners = append(runners, runner{"udp",
				func() error { notify(); return serveUDP(pc) },
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
		r.log.Error("dns server failed; stopping", "err", failed)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for i, s := range runners {
		if running[i] {
			if err := s.stop(sctx); err != nil {
				r.log.Warn("dns server shutdown", "net", s.net, "err", err)
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
