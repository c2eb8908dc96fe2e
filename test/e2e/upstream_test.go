//go:build e2e

package e2e

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// The upstream DNS server of the node: kubelet's resolvConf (node.sh) names
// it, so kdnsd's pods (dnsPolicy: Default) forward every name outside the
// cluster here. It runs in this test process, on the node IP inside the
// namespace: no query ever leaves.
const (
	upstreamAddr = "10.200.0.1:53"
	// externalZone holds the only names the upstream knows; each resolves to
	// externalIP (TEST-NET-1, never contacted).
	externalZone = "e2e.example."
	externalIP   = "192.0.2.53"
)

// upstreamQueries counts the queries the upstream has answered.
var upstreamQueries atomic.Int64

type upstream struct{ udp, tcp *dns.Server }

func startUpstream(addr string) (*upstream, error) {
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		upstreamQueries.Add(1)
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) != 1 || !dns.IsSubDomain(externalZone, q.Question[0].Name) {
			m.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A:   net.ParseIP(externalIP),
			})
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	u := &upstream{
		udp: &dns.Server{PacketConn: pc, Handler: handler},
		tcp: &dns.Server{Listener: l, Handler: handler, ReadTimeout: 2 * time.Second},
	}
	go u.udp.ActivateAndServe()
	go u.tcp.ActivateAndServe()
	return u, nil
}

func (u *upstream) Shutdown() {
	u.udp.Shutdown()
	u.tcp.Shutdown()
}
