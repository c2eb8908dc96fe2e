package resolver

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

var (
	fuzzOnce sync.Once
	fuzzR    [2]*Resolver // insecure and verified pod modes
)

// FuzzServeDNS feeds raw messages along the paths a server takes them:
//
//   - header check (dnsserver.AcceptQuery), unpacking, ServeDNS over UDP and TCP.
//     ServeDNS also gets the messages the header check would have
//     rejected, since other servers may call it. Nothing may panic, and
//     every response must be a well-formed message that fits its
//     transport.
//   - the UDP fast path: what it answers, miekg/dns must unpack, and the
//     general path must answer byte for byte the same.
func FuzzServeDNS(f *testing.F) {
	seed := func(name string, qtype uint16, edit func(*dns.Msg)) {
		m := new(dns.Msg).SetQuestion(name, qtype)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range resolvertest.Cases() {
		seed(c.Name, c.Type, nil)
		seed(c.Name, c.Type, func(m *dns.Msg) { m.SetEdns0(1232, true) })
	}
	big := "big.kube-system.svc.cluster.local."
	seed(big, dns.TypeA, nil)
	seed(big, dns.TypeA, func(m *dns.Msg) { m.SetEdns0(600, true) })
	seed("_http._tcp.hl.default.svc.cluster.local.", dns.TypeSRV, func(m *dns.Msg) { m.SetEdns0(512, false) })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(3) })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	})
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{10, 0, 0, 0}})
	})
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Response = true })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })
	seed("fd00-10-244--1-1.default.pod.cluster.local.", dns.TypeAAAA, nil)
	seed("--.default.pod.cluster.local.", dns.TypeAAAA, nil)
	seed("1-2-3-4-5-6-7-8.default.pod.cluster.local.", dns.TypeAAAA, nil)
	seed(`w\000b.default.svc.cluster.local.`, dns.TypeA, nil)
	seed(`\.\..cluster.local.`, dns.TypeA, nil)
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})

	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOnce.Do(func() {
			for i, mode := range []string{PodInsecure, PodVerified} {
				fuzzR[i] = newModeResolver(t, mode)
				fuzzR[i].noRotate = true
			}
		})
		if len(data) >= dnswire.HeaderLen {
			h := dns.Header{
				Id:      binary.BigEndian.Uint16(data),
				Bits:    binary.BigEndian.Uint16(data[2:]),
				Qdcount: binary.BigEndian.Uint16(data[4:]),
				Ancount: binary.BigEndian.Uint16(data[6:]),
				Nscount: binary.BigEndian.Uint16(data[8:]),
				Arcount: binary.BigEndian.Uint16(data[10:]),
			}
			dnsserver.AcceptQuery(h)
		}
		req := new(dns.Msg)
		unpackErr := req.Unpack(data)
		for _, r := range fuzzR {
			fast, ok := r.AnswerUDP(make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut), data)
			if ok {
				if unpackErr != nil {
					t.Fatalf("fast path answered what miekg/dns cannot unpack: %v", unpackErr)
				}
				w := dnswritertest.New(false)
				r.ServeDNS(w, req)
				if len(w.Replies()) != 1 || !bytes.Equal(w.Replies()[0], fast) {
					t.Fatalf("fast path and ServeDNS differ:\nfast    % x\ngeneral % x", fast, w.Replies())
				}
			}
		}
		if unpackErr != nil {
			return // the server answers FORMERR without us
		}
		for _, tcp := range []bool{false, true} {
			w := dnswritertest.New(tcp)
			fuzzR[0].ServeDNS(w, req)
			if req.Response {
				if len(w.Replies()) != 0 {
					t.Fatal("answered a response")
				}
				continue
			}
			if len(w.Replies()) != 1 {
				t.Fatalf("%d responses", len(w.Replies()))
			}
			b := w.Replies()[0]
			limit := dnswire.MaxMsgLen
			if !tcp {
				limit = dnswire.MinUDPPayload
				if opt := req.IsEdns0(); opt != nil {
					limit = min(max(int(opt.UDPSize()), dnswire.MinUDPPayload), resolvertest.MaxUDPSize)
				}
			}
			if len(b) > limit {
				t.Fatalf("%d octets, limit %d", len(b), limit)
			}
			resp := new(dns.Msg)
			if err := resp.Unpack(b); err != nil {
				t.Fatalf("malformed response: %v\nrequest %v\nresponse % x", err, req, b)
			}
			if resp.Id != req.Id || !resp.Response {
				t.Fatalf("header %+v", resp.MsgHdr)
			}
			if len(resp.Question) == 1 && (len(req.Question) != 1 || resp.Question[0] != req.Question[0]) {
				t.Fatalf("question %v, asked %v", resp.Question, req.Question)
			}
		}
	})
}
