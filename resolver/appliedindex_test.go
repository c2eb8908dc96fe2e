package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// TestAppliedIndex: the CHAOS TXT question for AppliedIndexName is answered
// with the served View's index, through ServeDNS and the UDP fast path
// alike; the same name in class IN, or another type, is not.
func TestAppliedIndex(t *testing.T) {
	for _, tc := range []struct {
		name      string
		index     uint64 // of the View served; 0: none
		qname     string
		qtype     uint16
		qclass    uint16
		wantRcode int
		wantTXT   string // "" for no answer
	}{
		{"no view yet", 0, AppliedIndexName, dns.TypeTXT, dns.ClassCHAOS, dns.RcodeSuccess, "0"},
		{"served view", 42, AppliedIndexName, dns.TypeTXT, dns.ClassCHAOS, dns.RcodeSuccess, "42"},
		{"upper case", 7, "Applied-Index.KDNSD.", dns.TypeTXT, dns.ClassCHAOS, dns.RcodeSuccess, "7"},
		{"ANY", 7, AppliedIndexName, dns.TypeANY, dns.ClassCHAOS, dns.RcodeSuccess, "7"},
		{"class IN is not it", 7, AppliedIndexName, dns.TypeTXT, dns.ClassINET, dns.RcodeRefused, ""},
		{"type A is not it", 7, AppliedIndexName, dns.TypeA, dns.ClassCHAOS, dns.RcodeRefused, ""},
		{"another CHAOS name", 7, "version.kdnsd.", dns.TypeTXT, dns.ClassCHAOS, dns.RcodeRefused, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestResolver(t, nil)
			if tc.index > 0 {
				r.Update(testView(tc.index))
			}
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, tc.qtype)
			req.Question[0].Qclass = tc.qclass
			raw, err := req.Pack()
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := r.AnswerUDP(make([]byte, 0, 4096), raw)
			if !ok {
				t.Fatal("the fast path left the question to the general path")
			}
			fastResp := new(dns.Msg)
			if err := fastResp.Unpack(fast); err != nil {
				t.Fatal(err)
			}
			for path, resp := range map[string]*dns.Msg{"ServeDNS": exchange(t, r, req, false), "fast path": fastResp} {
				if resp.Rcode != tc.wantRcode {
					t.Fatalf("%s: rcode %s, want %s", path, dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.wantRcode])
				}
				if tc.wantTXT == "" {
					if len(resp.Answer) != 0 {
						t.Fatalf("%s: answer %v, want none", path, resp.Answer)
					}
					continue
				}
				if len(resp.Answer) != 1 {
					t.Fatalf("%s: %d answers, want 1: %v", path, len(resp.Answer), resp)
				}
				txt, ok := resp.Answer[0].(*dns.TXT)
				if !ok || len(txt.Txt) != 1 || txt.Txt[0] != tc.wantTXT || txt.Hdr.Class != dns.ClassCHAOS || txt.Hdr.Ttl != 0 {
					t.Fatalf("%s: answer %v, want CH TXT %q with TTL 0", path, resp.Answer[0], tc.wantTXT)
				}
				if !resp.Authoritative {
					t.Fatalf("%s: not authoritative", path)
				}
			}
		})
	}
}
