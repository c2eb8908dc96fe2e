package dnsserver_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnsserver/dnsservertest"
	"github.com/kdnsd/kdnsd/resolver"
)

// TestTCPPipelining sends three queries on one TCP connection before reading
// any answer.
func TestTCPPipelining(t *testing.T) {
	r := newTestResolver(t, resolver.Config{})
	addr := dnsservertest.Start(t, dnsserver.Config{Handler: r}, 2)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := []string{"web.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.", "nope.cluster.local."}
	var buf []byte
	for i, name := range names {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Id = uint16(100 + i)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(b)))
		buf = append(buf, b...)
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := map[uint16]*dns.Msg{}
	for range names {
		var l [2]byte
		if _, err := readFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := readFull(c, b); err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		got[m.Id] = m
	}
	for i, name := range names {
		m := got[uint16(100+i)]
		if m == nil || m.Question[0].Name != name {
			t.Errorf("query %d (%s): %v", i, name, m)
		}
	}
	if len(got[100].Answer) != 1 || len(got[101].Answer) != 1 || got[102].Rcode != dns.RcodeNameError {
		t.Errorf("answers %v", got)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestAnswerFromQueriedAddress: on a socket of the unspecified address, the
// answer leaves from the address the query was sent to (a client's
// connected socket accepts nothing else).
func TestAnswerFromQueriedAddress(t *testing.T) {
	for _, c := range []struct {
		listen  string
		dst     []string
		noBatch bool
	}{
		{"0.0.0.0:0", []string{"127.0.0.1", "127.0.0.2"}, false},
		{"[::]:0", []string{"::1", "127.0.0.2", "127.0.0.1"}, false},
		{"0.0.0.0:0", []string{"127.0.0.2"}, true},
		{"[::]:0", []string{"::1", "127.0.0.2"}, true},
	} {
		t.Run(fmt.Sprintf("%s batch=%v", c.listen, !c.noBatch), func(t *testing.T) {
			r := newTestResolver(t, resolver.Config{})
			ctx := t.Context()
			socks, err := dnsserver.Listen(ctx, c.listen, 2)
			if err != nil {
				t.Skipf("%s: %v", c.listen, err) // e.g. no IPv6: the other cases still run
			}
			port := socks.TCP.Addr().(*net.TCPAddr).Port
			done := make(chan error, 1)
			ready := make(chan struct{})
			sctx, cancel := context.WithCancel(ctx)
			go func() {
				done <- dnsserver.Serve(sctx, socks, dnsserver.Config{Handler: r, NoBatch: c.noBatch}, func() { close(ready) })
			}()
			<-ready
			for _, dst := range c.dst {
				for _, name := range []string{"web.default.svc.cluster.local.", "w\\.eb.cluster.local."} { // fast and general paths
					cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
					resp, _, err := cl.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), net.JoinHostPort(dst, fmt.Sprint(port)))
					if err != nil {
						t.Errorf("%s → %s %s: %v", c.listen, dst, name, err)
					} else if resp.Rcode == dns.RcodeServerFailure {
						t.Errorf("%s → %s: %v", c.listen, dst, resp)
					}
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// TestForwardFromFastServer: queries the resolver does not answer reach
// Config.Forward through the UDP server's general path.
func TestForwardFromFastServer(t *testing.T) {
	fwd := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{"forwarded"}})
		time.Sleep(10 * time.Millisecond)
		w.WriteMsg(m)
	})
	r := newTestResolver(t, resolver.Config{Forward: fwd})
	addr := dnsservertest.Start(t, dnsserver.Config{Handler: r}, 2)
	cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, c := range []struct {
		name  string
		qtype uint16
		fwd   bool
	}{
		{"example.com.", dns.TypeA, true},
		{"3.1.244.10.in-addr.arpa.", dns.TypePTR, true}, // a not-ready endpoint
		{"110.0.96.10.in-addr.arpa.", dns.TypePTR, false},
		{"web.default.svc.cluster.local.", dns.TypeA, false},
	} {
		resp, _, err := cl.Exchange(new(dns.Msg).SetQuestion(c.name, c.qtype), addr)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, isTXT := firstRR(resp).(*dns.TXT)
		if isTXT != c.fwd {
			t.Errorf("%s: forwarded %v, want %v: %v", c.name, isTXT, c.fwd, resp)
		}
	}
}

func firstRR(m *dns.Msg) dns.RR {
	if len(m.Answer) == 0 {
		return nil
	}
	return m.Answer[0]
}
