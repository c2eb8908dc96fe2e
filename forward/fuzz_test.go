package forward

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
)

// FuzzServeDNS feeds ServeDNS arbitrary queries, answered by an upstream
// that replies with arbitrary bytes (given the query's ID), and checks that
// every query gets one reply that parses, carries the query's ID and fits
// the client's buffer.
func FuzzServeDNS(f *testing.F) {
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	q := query("www.example.", dns.TypeA)
	qe := query("www.example.", dns.TypeA)
	qe.SetEdns0(4096, true)
	big := answerMsg(q, 60)
	for i := range 100 {
		big.Answer = append(big.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{string(rune('a' + i%26))}})
	}
	nx := new(dns.Msg).SetRcode(q, dns.RcodeNameError)
	nx.Ns = []dns.RR{soa("www.example.", 60, 60)}
	tc := new(dns.Msg).SetReply(q)
	tc.Truncated = true
	ext := new(dns.Msg).SetRcode(qe, dns.RcodeBadCookie)
	ext.SetEdns0(1232, false)
	for _, seed := range [][2][]byte{
		{pack(q), pack(answerMsg(q, 60, "192.0.2.1"))},
		{pack(qe), pack(answerMsg(qe, 60, "192.0.2.1", "192.0.2.2"))},
		{pack(q), pack(big)},
		{pack(qe), pack(big)},
		{pack(q), pack(nx)},
		{pack(q), pack(tc)},
		{pack(q), pack(ext)},
		{pack(qe), pack(ext)},
		{pack(q), pack(new(dns.Msg).SetRcode(q, dns.RcodeServerFailure))},
		{pack(q), nil},
		{pack(q), []byte{0, 0, 0x80, 0, 0, 1}},
		{nil, nil},
	} {
		f.Add(seed[0], seed[1])
	}

	f.Fuzz(func(t *testing.T, reqRaw, replyRaw []byte) {
		req := new(dns.Msg)
		if req.Unpack(reqRaw) != nil {
			return // the server drops what does not parse
		}
		fw, err := New(Config{Upstreams: []string{"127.0.0.2"}})
		if err != nil {
			t.Fatal(err)
		}
		fw.exchange = func(_ context.Context, m *dns.Msg, _ string, _ bool) (*dns.Msg, error) {
			r := new(dns.Msg)
			err := r.Unpack(replyRaw)
			r.Id = m.Id
			return r, err
		}
		for _, tcp := range []bool{false, true} {
			for range 2 { // the second time, maybe from the cache
				rec := dnswritertest.New(tcp)
				fw.ServeDNS(rec, req)
				if req.Response {
					if len(rec.Replies()) != 0 {
						t.Fatal("answered a response")
					}
					continue
				}
				if len(rec.Replies()) != 1 {
					t.Fatalf("%d replies", len(rec.Replies()))
				}
				reply := new(dns.Msg)
				if err := reply.Unpack(rec.Replies()[0]); err != nil {
					t.Fatalf("reply does not parse: %v", err)
				}
				if reply.Id != req.Id || !reply.Response {
					t.Fatalf("reply header %v for query %v", reply.MsgHdr, req.MsgHdr)
				}
				limit := dns.MinMsgSize
				if opt := req.IsEdns0(); opt != nil {
					limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), UDPSize)
				}
				if !tcp && len(rec.Replies()[0]) > limit {
					t.Fatalf("UDP reply of %d octets, client buffer %d", len(rec.Replies()[0]), limit)
				}
			}
		}
	})
}
