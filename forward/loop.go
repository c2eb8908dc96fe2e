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

// loopDetector holds this Forwarder's loop probe names.
type loopDetector struct {
	mu      sync.Mutex
	names   map[string]*upstream // canonical probe name → upstream it was sent to
	looping atomic.Bool
	seen    atomic.Uint64 // probes that came back
}

func (l *loopDetector) init() { l.names = make(map[string]*upstream) }

// probeCameBack reports whether a canonical query name is one of our probe
// names, and if so records the loop.
func (l *loopDetector) probeCameBack(f *Forwarder, name string) bool {
	if !strings.HasSuffix(name, "."+LoopZone) {
		return false
	}
	l.mu.Lock()
	u := l.names[name]
	l.mu.Unlock()
	if u == nil {
		return false // another replica's: forwarded, so it comes round to it
	}
	l.seen.Add(1)
	if l.looping.CompareAndSwap(false, true) {
		f.log.Error("FORWARDING LOOP DETECTED: a query kdnsd sent upstream came back to it; "+
			"no longer forwarding (names outside the cluster zone get SERVFAIL). "+
			"Point kdnsd at resolvers that do not lead back to the cluster DNS (upstream flags, "+
			"stub domains, or the kubelet's --resolv-conf), then restart it",
			"upstream", u.addr, "upstreams", f.upstreamAddrs(), "probe", name)
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

// detectLoops sends every upstream a query for a probe name of its own,
// retrying until the upstream answers it, loopProbeTries times at most.
func (f *Forwarder) detectLoops(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range f.all {
		name := fmt.Sprintf("%016x.%s", rand.Uint64(), LoopZone)
		f.loop.mu.Lock()
		f.loop.names[name] = u
		f.loop.mu.Unlock()
		wg.Go(func() {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeHINFO)
			for try := 1; ; try++ {
				m.Id = dns.Id()
				_, err := f.exchange(ctx, m, u.addr, false)
				if err == nil || f.loop.looping.Load() || try == loopProbeTries {
					return
				}
				f.log.Debug("loop probe got no answer", "upstream", u.addr, "try", try, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(f.s.hcInterval):
				}
			}
		})
	}
	wg.Wait()
}
