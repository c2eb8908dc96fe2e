package forward

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Switch forwards through one Forwarder at a time and replaces it
// atomically: a query is handled wholly by the Forwarder in force when it
// arrived. It is how a configuration committed through Raft (upstreams,
// stub domains, cache size, negative-cache TTL) takes effect on a running
// replica, since a Forwarder's settings are fixed at New. A replaced
// Forwarder's health checks and loop detection stop; its queries in flight
// finish; its cache goes with it.
type Switch struct {
	cur atomic.Pointer[Forwarder]

	mu      sync.Mutex
	ctx     context.Context // Start's, once started
	stopCur context.CancelFunc
}

// NewSwitch returns a Switch forwarding through f.
func NewSwitch(f *Forwarder) *Switch {
	s := &Switch{}
	s.cur.Store(f)
	return s
}

// Start starts the current Forwarder (and each later one) until ctx ends.
// Later calls do nothing.
func (s *Switch) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		return
	}
	s.ctx = ctx
	s.stopCur = s.startLocked(s.cur.Load())
}

func (s *Switch) startLocked(f *Forwarder) context.CancelFunc {
	ctx, cancel := context.WithCancel(s.ctx)
	f.Start(ctx)
	return cancel
}

// Set makes f the Forwarder of every query from now on, starting it if the
// Switch is started, and stops the one it replaces.
func (s *Switch) Set(f *Forwarder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stop := s.stopCur
	if s.ctx != nil {
		s.stopCur = s.startLocked(f)
	}
	s.cur.Store(f)
	if stop != nil {
		stop()
	}
}

// Current returns the Forwarder in force.
func (s *Switch) Current() *Forwarder { return s.cur.Load() }

// ServeDNS forwards req through the Forwarder in force. It implements
// dns.Handler.
func (s *Switch) ServeDNS(w dns.ResponseWriter, req *dns.Msg) { s.cur.Load().ServeDNS(w, req) }
