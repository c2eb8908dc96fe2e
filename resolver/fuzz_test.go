package resolver

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

var (
	fuzzOnce sync.Once
	fuzzR    *Resolver
)

// FuzzServeDNS feeds raw messages along the path a server takes them:
// header check (acceptQuery), unpacking, ServeDNS over UDP and TCP. ServeDNS
// also gets the messages the header check would have rejected, since other
// servers may call it. Nothing may panic, and every response must be a
// well-formed message that fits its transport.
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
	for _, tc := range table {
		seed(tc.name, tc.qtype, nil)
	}
	big := "big.kube-system.svc.cluster.local."
	seed(big, dns.TypeA, nil)
	seed(big, dns.TypeA, func(m *dns.Msg) { m.SetEdns0(600, true) })
	seed("_http._tcp.hl.default.svc.cluster.local.", dns.TypeSRV, func(m *dns.Msg) { m.SetEdns0(512, false) })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(3) })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	seed("web.default.svc.cluster.local.", dns.TypeA, func(m *dns.Msg) { m.Response = true })
	seed(`w\000b.default.svc.cluster.local.`, dns.TypeA, nil)
	seed(`\.\..cluster.local.`, dns.TypeA, nil)
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})

	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOnce.Do(func() { fuzzR = newTestResolver(t, testView(7)) })
		if len(data) >= headerLen {
			h := dns.Header{
				Id:      binary.BigEndian.Uint16(data),
				Bits:    binary.BigEndian.Uint16(data[2:]),
				Qdcount: binary.BigEndian.Uint16(data[4:]),
				Ancount: binary.BigEndian.Uint16(data[6:]),
				Nscount: binary.BigEndian.Uint16(data[8:]),
				Arcount: binary.BigEndian.Uint16(data[10:]),
			}
			acceptQuery(h)
		}
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return // the server answers FORMERR without us
		}
		for _, tcp := range []bool{false, true} {
			w := &recorder{tcp: tcp}
			fuzzR.ServeDNS(w, req)
			if req.Response {
				if len(w.writes) != 0 {
					t.Fatal("answered a response")
				}
				continue
			}
			if len(w.writes) != 1 {
				t.Fatalf("%d responses", len(w.writes))
			}
			b := w.writes[0]
			limit := maxMsgLen
			if !tcp {
				limit = minUDPPayload
				if opt := req.IsEdns0(); opt != nil {
					limit = min(max(int(opt.UDPSize()), minUDPPayload), maxUDPPayload)
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
