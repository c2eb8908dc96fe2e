package forward

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/test/wait"
)

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLoopDetection(t *testing.T) {
	var logs syncBuffer
	// The upstream forwards everything back to the forwarder, whose address
	// is known once it serves.
	var fwdAddr string
	var addrOnce sync.WaitGroup
	addrOnce.Add(1)
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		addrOnce.Wait()
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		reply, _, err := c.Exchange(r, fwdAddr)
		if err != nil {
			reply = new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
		}
		reply.Id = r.Id
		w.WriteMsg(reply)
	})
	other := startServer(t, answer(60, "192.0.2.1"))
	f := newForwarder(t, Config{
		Upstreams:           []string{up.addr},
		StubDomains:         map[string][]string{"corp.example.": {other.addr}},
		HealthCheckInterval: 50 * time.Millisecond,
		Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
	}, nil)
	fwdAddr = serveForwarder(t, f)
	addrOnce.Done()

	startForwarder(t, f)
	wait.For(t, "the loop to be detected", 10*time.Second, func() bool { return f.Stats().Looping })
	if n := f.Stats().LoopsDetected; n != 1 {
		t.Errorf("%d loops detected", n)
	}
	log := logs.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "FORWARDING LOOP DETECTED") || !strings.Contains(log, up.addr) {
		t.Errorf("no error log naming the upstream:\n%s", log)
	}

	// Forwarding has stopped, for every name: SERVFAIL without asking an
	// upstream (checked below).
	wait.For(t, "the probe to end", 10*time.Second, func() bool { return up.queries() == 1 })
	for _, name := range []string{"www.example.", "x.corp.example."} {
		if r := serve(t, f, query(name, dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s while looping: %s", name, rcodeName(r.Rcode))
		}
	}
	if up.queries() != 1 || other.queries() != 1 { // the loop probes
		t.Errorf("upstreams got %d and %d queries, want only the loop probes", up.queries(), other.queries())
	}
}

func TestNoLoop(t *testing.T) {
	up := startServer(t, rcode(dns.RcodeNameError, 60, 60))
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, HealthCheckInterval: 10 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx)
	f.Start(ctx) // a second call does nothing
	wait.For(t, "the loop probe", 10*time.Second, func() bool { return up.queries() == 1 })
	for _, name := range []string{"www.example.", "0123456789abcdef." + LoopZone} { // another replica's probe
		r := serve(t, f, query(name, dns.TypeA), false)
		if r.Rcode != dns.RcodeNameError || f.Stats().Looping {
			t.Errorf("%s: %s, looping %v", name, rcodeName(r.Rcode), f.Stats().Looping)
		}
	}
	if up.queries() != 3 {
		t.Errorf("upstream got %d queries, want 3", up.queries())
	}
}
