package forward

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// LoopZone is the zone below which loop probe names are made.
const LoopZone = "kdnsd-loop-detect."

// loopProbeTries is how often a loop probe is sent to an upstream that does
// not answer it.
const loopProbeTries = 5

// LoopHold is how long forwarding stays paused once a loop is confirmed.
// The first query to forward after it has the upstreams probed again;
// forwarding resumes once none of them loops.
const LoopHold = time.Minute

// loopDetector holds this Forwarder's loop probes and its loop verdict.
//
// A probe counts as come back only while its query to the upstream waits
// for the reply (at most Config.Timeout): in a real loop the upstream
// cannot answer before the query it passed on has come round, so the probe
// comes back on the upstream's reply path, inside that window. A probe name
// seen at any other time (replayed by someone who read it on the wire, or a
// late copy) is an ordinary name and is forwarded. One probe that came back
// is then confirmed by a fresh one, whose name nobody has seen, before
// forwarding pauses.
type loopDetector struct {
	mu     sync.Mutex
	probes map[string]*loopProbe // canonical name → probe whose query is in flight

	ctx       context.Context // Start's, for the probes after a pause
	looping   atomic.Bool     // a loop was confirmed: forwarding is paused
	until     atomic.Int64    // when the pause ends (Forwarder.now, Unix nanoseconds)
	reprobing atomic.Bool     // the upstreams are being probed again
	detected  atomic.Uint64   // loops confirmed
}

// loopProbe is one probe name.
type loopProbe struct {
	back atomic.Bool // the probe came back while in flight
}

func (l *loopDetector) init() { l.probes = make(map[string]*loopProbe) }

// probeCameBack reports whether a canonical query name is one of our probes
// in flight, and if so records that it came back.
func (l *loopDetector) probeCameBack(name string) bool {
	if !strings.HasSuffix(name, "."+LoopZone) {
		return false
	}
	l.mu.Lock()
	p := l.probes[name]
	l.mu.Unlock()
	if p == nil {
		return false // another replica's, or not in flight: forwarded like any name
	}
	p.back.Store(true)
	return true
}

// loopPaused reports whether forwarding is paused for a loop. Once the pause
// is over, the first call has every upstream probed again, and forwarding
// stays paused until that finds no loop.
func (f *Forwarder) loopPaused() bool {
	l := &f.loop
	if !l.looping.Load() {
		return false
	}
	if f.now().UnixNano() >= l.until.Load() && l.reprobing.CompareAndSwap(false, true) {
		go func() {
			defer l.reprobing.Store(false)
			if !f.detectLoops(l.ctx) && l.ctx.Err() == nil {
				l.looping.Store(false)
				f.log.Info("forwarding loop gone: forwarding again", "upstreams", f.upstreamAddrs())
			}
		}()
	}
	return true
}

func (f *Forwarder) upstreamAddrs() []string {
	s := make([]string, len(f.all))
	for i, u := range f.all {
		s[i] = u.addr
	}
	return s
}

// detectLoops probes every upstream, pauses forwarding for LoopHold if any
// loops, and reports whether one did.
func (f *Forwarder) detectLoops(ctx context.Context) bool {
	var wg sync.WaitGroup
	var found atomic.Bool
	for _, u := range f.all {
		wg.Go(func() {
			if !f.loops(ctx, u) {
				return
			}
			found.Store(true)
			f.loop.until.Store(f.now().Add(LoopHold).UnixNano())
			f.loop.looping.Store(true)
			f.loop.detected.Add(1)
			f.log.Error("FORWARDING LOOP DETECTED: queries kdnsd sends upstream come back to it; "+
				"forwarding paused (names outside the cluster zone get cached answers or SERVFAIL), "+
				"probed again after "+LoopHold.String()+". "+
				"Point kdnsd at resolvers that do not lead back to the cluster DNS (upstream flags, "+
				"stub domains, or the kubelet's --resolv-conf)",
				"upstream", u.addr, "upstreams", f.upstreamAddrs())
		})
	}
	wg.Wait()
	return found.Load()
}

// loops reports whether a probe sent to u came back, and then a fresh one.
func (f *Forwarder) loops(ctx context.Context, u *upstream) bool {
	for confirm := range 2 {
		if !f.sendLoopProbe(ctx, u) {
			return false
		}
		if confirm == 0 {
			f.log.Warn("a loop probe came back; confirming with a fresh one", "upstream", u.addr)
		}
	}
	return true
}

// sendLoopProbe sends u a query for a new probe name, retrying until u answers,
// loopProbeTries times at most, and reports whether the probe came back
// while a query for it was in flight.
func (f *Forwarder) sendLoopProbe(ctx context.Context, u *upstream) bool {
	name := fmt.Sprintf("%016x.%s", rand.Uint64(), LoopZone)
	p := &loopProbe{}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeHINFO)
	for try := 1; ; try++ {
		m.Id = dns.Id()
		f.loop.mu.Lock()
		f.loop.probes[name] = p
		f.loop.mu.Unlock()
		_, err := f.exchange(ctx, m, u.addr, false)
		f.loop.mu.Lock()
		delete(f.loop.probes, name)
		f.loop.mu.Unlock()
		if p.back.Load() {
			return true
		}
		if err == nil || try == loopProbeTries {
			return false
		}
		f.log.Debug("loop probe got no answer", "upstream", u.addr, "try", try, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(f.s.hcInterval):
		}
	}
}
