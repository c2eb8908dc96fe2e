package forward

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
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

// loopBack returns a handler that sends every query to the forwarder at
// *addr (known once release is called) and passes its reply on, as an
// upstream that forwards to the cluster DNS does.
func loopBack(addr *string) (h dns.HandlerFunc, release func()) {
	var known sync.WaitGroup
	known.Add(1)
	return func(w dns.ResponseWriter, r *dns.Msg) {
		known.Wait()
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		reply, _, err := c.Exchange(r, *addr)
		if err != nil {
			reply = new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
		}
		reply.Id = r.Id
		w.WriteMsg(reply)
	}, known.Done
}

// TestLoopDetection: a real loop (the upstream sends queries back) is
// confirmed by a second probe and pauses forwarding, cached answers are still
// served, and once the pause is over the upstreams are probed again:
// forwarding stays paused while the loop lasts and resumes once it is gone.
func TestLoopDetection(t *testing.T) {
	var logs syncBuffer
	var fwdAddr string
	looping, release := loopBack(&fwdAddr)
	upHandler := newSwitchable(looping)
	up := startServer(t, upHandler.serve)
	other := startServer(t, answer(60, "192.0.2.1"))
	clock := newFakeClock()
	f := newForwarder(t, Config{
		Upstreams:           []string{up.addr},
		StubDomains:         map[string][]string{"corp.example.": {other.addr}},
		HealthCheckInterval: 50 * time.Millisecond,
		Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
	}, clock)
	fwdAddr = serveForwarder(t, f)
	release()

	// An answer cached before the loop is found.
	if r := serve(t, f, query("cached.corp.example.", dns.TypeA), false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("before the loop: %s", rcodeName(r.Rcode))
	}

	startForwarder(t, f)
	wait.For(t, "the loop to be detected", 10*time.Second, func() bool { return f.Stats().Looping })
	if n := f.Stats().LoopsDetected; n != 1 {
		t.Errorf("%d loops detected", n)
	}
	if n := up.queries(); n != 2 {
		t.Errorf("upstream got %d queries, want 2: a probe and a fresh one to confirm", n)
	}
	log := logs.String()
	if !strings.Contains(log, "confirming with a fresh one") || !strings.Contains(log, "level=ERROR") ||
		!strings.Contains(log, "FORWARDING LOOP DETECTED") || !strings.Contains(log, up.addr) {
		t.Errorf("no error log naming the upstream after a confirmation:\n%s", log)
	}

	// Forwarding is paused, for every name; cached answers are served.
	for _, name := range []string{"www.example.", "x.corp.example."} {
		if r := serve(t, f, query(name, dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s while looping: %s", name, rcodeName(r.Rcode))
		}
	}
	r := serve(t, f, query("cached.corp.example.", dns.TypeA), false)
	if ips, _ := aRecords(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(ips, []string{"192.0.2.1"}) {
		t.Errorf("cached name while looping: %s %v", rcodeName(r.Rcode), ips)
	}
	if up.queries() != 2 || other.queries() != 2 { // the probes, and the cached query
		t.Errorf("upstreams got %d and %d queries while paused", up.queries(), other.queries())
	}

	// The pause ends: the next query to forward has the upstreams probed
	// again, and gets a stale answer meanwhile. The loop is still there.
	clock.advance(LoopHold + time.Second) // past the cached answer's TTL too
	r = serve(t, f, query("cached.corp.example.", dns.TypeA), false)
	if ips, ttls := aRecords(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(ips, []string{"192.0.2.1"}) || ttls[0] != StaleTTL {
		t.Errorf("stale name while probing again: %s %v %v", rcodeName(r.Rcode), ips, ttls)
	}
	wait.For(t, "the loop to be confirmed again", 10*time.Second, func() bool { return f.Stats().LoopsDetected == 2 })
	if !f.Stats().Looping || up.queries() != 4 {
		t.Errorf("looping %v, upstream got %d queries, want 4", f.Stats().Looping, up.queries())
	}

	// The loop is fixed: after the next pause, forwarding resumes.
	upHandler.set(answer(60, "192.0.2.2"))
	clock.advance(LoopHold + time.Second)
	if r := serve(t, f, query("www.example.", dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("while probing again: %s, want SERVFAIL until no loop is found", rcodeName(r.Rcode))
	}
	// Queries to forward start the probes (once the previous round has
	// ended) and are answered once they find no loop.
	wait.For(t, "forwarding to resume", 10*time.Second, func() bool {
		r = serve(t, f, query("www.example.", dns.TypeA), false)
		return r.Rcode == dns.RcodeSuccess
	})
	if ips, _ := aRecords(r); f.Stats().Looping || !slices.Equal(ips, []string{"192.0.2.2"}) {
		t.Errorf("after the loop: looping %v, %v", f.Stats().Looping, ips)
	}
	if n := f.Stats().LoopsDetected; n != 2 || !strings.Contains(logs.String(), "forwarding loop gone") {
		t.Errorf("%d loops detected; log:\n%s", n, logs.String())
	}
}

// TestLoopProbeReplay: the probe name travels to the upstream in clear. An
// observer who sends it to kdnsd while the probe is in flight gets one probe
// counted, which a fresh probe then fails to confirm; sent again later, it is
// forwarded like any name. Forwarding never pauses.
func TestLoopProbeReplay(t *testing.T) {
	var fwdAddr string
	var known sync.WaitGroup
	known.Add(1)
	var mu sync.Mutex
	var probes []string
	replayRcode := -1
	up := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		name := r.Question[0].Name
		if strings.HasSuffix(name, "."+LoopZone) {
			mu.Lock()
			probes = append(probes, name)
			first := len(probes) == 1
			mu.Unlock()
			if first {
				// The observer replays the first probe at once, while
				// kdnsd waits for this reply.
				known.Wait()
				c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
				if reply, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeHINFO), fwdAddr); err == nil {
					mu.Lock()
					replayRcode = reply.Rcode
					mu.Unlock()
				}
			}
		}
		answer(60, "192.0.2.1")(w, r)
	})
	var logs syncBuffer
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, HealthCheckInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	fwdAddr = serveForwarder(t, f)
	known.Done()
	startForwarder(t, f)
	wait.For(t, "the probes to end", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "no forwarding loop found") || f.Stats().Looping
	})
	if f.Stats().Looping {
		t.Fatal("one probe sent back while in flight paused forwarding")
	}

	mu.Lock()
	names, rc := slices.Clone(probes), replayRcode
	mu.Unlock()
	if len(names) != 2 || names[0] == names[1] || rc != dns.RcodeServerFailure {
		t.Fatalf("probes %q, the replay in flight got %s", names, rcodeName(rc))
	}
	// Sent again after their replies, both names are forwarded.
	for _, name := range names {
		for range 3 {
			if r := serve(t, f, query(name, dns.TypeHINFO), false); r.Rcode != dns.RcodeSuccess {
				t.Errorf("replayed %s: %s", name, rcodeName(r.Rcode))
			}
		}
	}
	if r := serve(t, f, query("www.example.", dns.TypeA), false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("www.example.: %s", rcodeName(r.Rcode))
	}
	if st := f.Stats(); st.Looping || st.LoopsDetected != 0 {
		t.Errorf("looping %v, %d loops detected", st.Looping, st.LoopsDetected)
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
