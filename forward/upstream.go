package forward

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstream is one upstream server and its health.
type upstream struct {
	addr string // ip:port
	log  *slog.Logger

	queries, failures atomic.Uint64
	fails             atomic.Int32 // consecutive failed attempts
	down              atomic.Bool
	probing           atomic.Bool
}

func (u *upstream) succeeded() {
	u.fails.Store(0)
	if u.down.CompareAndSwap(true, false) {
		u.log.Info("upstream is healthy again", "upstream", u.addr)
	}
}

func (u *upstream) failed(err error) {
	u.failures.Add(1)
	if u.fails.Add(1) >= MaxFails && u.down.CompareAndSwap(false, true) {
		u.log.Warn("upstream marked down", "upstream", u.addr, "consecutiveFailures", u.fails.Load(), "err", err)
	}
}

var (
	errMismatch = errors.New("reply does not match the query")
	errRcode    = errors.New("upstream answered SERVFAIL or REFUSED")
)

// try sends m to u over UDP, and over TCP if the reply is truncated. An
// error means the attempt failed; a reply may come with it (SERVFAIL,
// REFUSED, or truncated when TCP failed).
func (f *Forwarder) try(u *upstream, m *dns.Msg) (*dns.Msg, error) {
	u.queries.Add(1)
	m.Id = dns.Id()
	r, err := f.exchange(context.Background(), m, u.addr, false)
	if r != nil && r.Truncated && r.Id == m.Id && r.Response {
		// A reply cut short may not unpack whole: its TC bit is enough.
		tc := r
		m.Id = dns.Id()
		r, err = f.exchange(context.Background(), m, u.addr, true)
		if err == nil {
			err = checkReply(m, r)
		}
		if err != nil {
			tc.Answer, tc.Ns, tc.Extra = nil, nil, nil // possibly partial
			if checkReply(m, tc) != nil {
				tc = nil
			}
			return tc, err
		}
	} else if err == nil {
		err = checkReply(m, r)
	}
	if err != nil {
		f.log.Debug("upstream attempt failed", "upstream", u.addr, "name", m.Question[0].Name, "err", err)
		return nil, err
	}
	if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
		return r, errRcode
	}
	return r, nil
}

// checkReply checks that r answers q: a response with q's opcode and
// question. Replies other than NOERROR may omit the question.
func checkReply(q, r *dns.Msg) error {
	if r == nil || !r.Response || r.Opcode != q.Opcode {
		return errMismatch
	}
	if len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess {
		return nil
	}
	if len(r.Question) != 1 {
		return errMismatch
	}
	a, b := &q.Question[0], &r.Question[0]
	if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
		return errMismatch
	}
	return nil
}

// healthLoop probes the upstreams marked down every interval until ctx is
// done.
func (f *Forwarder) healthLoop(ctx context.Context) {
	t := time.NewTicker(f.s.hcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, u := range f.all {
			if u.down.Load() && u.probing.CompareAndSwap(false, true) {
				go f.probe(ctx, u)
			}
		}
	}
}

// probe asks a down upstream for ". IN NS", and marks it healthy if it
// answers with neither SERVFAIL nor REFUSED.
func (f *Forwarder) probe(ctx context.Context, u *upstream) {
	defer u.probing.Store(false)
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	r, err := f.exchange(ctx, m, u.addr, false)
	if err != nil && (r == nil || !r.Truncated) {
		f.log.Debug("health probe failed", "upstream", u.addr, "err", err)
		return
	}
	if checkReply(m, r) != nil || r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
		f.log.Debug("health probe failed", "upstream", u.addr, "rcode", dns.RcodeToString[r.Rcode])
		return
	}
	u.succeeded()
}
