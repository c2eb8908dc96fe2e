package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
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
func (r *Resolver) ListenAndServe(ctx context.Context, addr string, ready func()) error {
	pc, ln, err := listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("resolver: cannot serve DNS on %s: %w", addr, err)
	}
	r.log.Info("serving dns", "udp", pc.LocalAddr(), "tcp", ln.Addr())
	if err := r.serve(ctx, pc, ln, ready); err != nil {
		return fmt.Errorf("resolver: serving DNS on %s: %w", addr, err)
	}
	return nil
}

// listen opens the UDP and the TCP socket of addr.
func listen(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	var lc net.ListenConfig
	if port != "0" {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		return pc, ln, nil
	}
	// Port 0: let TCP pick a port, and take the same for UDP if it is free.
	for range 20 {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, fmt.Sprint(p)))
		if err == nil {
			return pc, ln, nil
		}
		ln.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("no port free for both UDP and TCP")
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

// serve runs a UDP and a TCP server on pc and ln until ctx is done or one of
// them fails. It closes pc and ln.
func (r *Resolver) serve(ctx context.Context, pc net.PacketConn, ln net.Listener, ready func()) error {
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	servers := [2]*dns.Server{
		{PacketConn: pc, Handler: r, UDPSize: maxUDPPayload, MsgAcceptFunc: acceptQuery, NotifyStartedFunc: notify},
		{Listener: ln, Handler: r, MsgAcceptFunc: acceptQuery, NotifyStartedFunc: notify},
	}
	type result struct {
		i   int
		err error
	}
	done := make(chan result, 2)
	for i, s := range servers {
		go func() { done <- result{i, s.ActivateAndServe()} }()
	}

	// Both must have started before either can be shut down.
	for n := 0; n < 2; {
		select {
		case <-started:
			n++
		case res := <-done:
			// A server failed to start: closing the sockets makes the other
			// return whether or not it started.
			pc.Close()
			ln.Close()
			<-done
			return fmt.Errorf("%s: %w", netName(res.i), orClosed(res.err))
		}
	}
	if ready != nil {
		ready()
	}

	var failed error
	running := [2]bool{true, true}
	select {
	case <-ctx.Done():
	case res := <-done:
		running[res.i] = false
		failed = fmt.Errorf("%s: %w", netName(res.i), orClosed(res.err))
		r.log.Error("dns server failed; stopping", "err", failed)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for i, s := range servers {
		if running[i] {
			if err := s.ShutdownContext(sctx); err != nil {
				r.log.Warn("dns server shutdown", "net", netName(i), "err", err)
			}
		}
	}
	for i := range running {
		if running[i] {
			<-done
		}
	}
	return failed
}

func netName(i int) string { return [2]string{"udp", "tcp"}[i] }

// orClosed turns the nil a server returns when closed under it into an error.
func orClosed(err error) error {
	if err == nil {
		return errors.New("server stopped")
	}
	return err
}
