package resolver

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/dnswriter/dnswritertest"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// testView is the View of resolvertest's fixture.
func testView(index uint64) *fsm.View { return resolvertest.FixtureView(index) }

func newTestResolver(t testing.TB, v *fsm.View) *Resolver {
	t.Helper()
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		r.Update(v)
	}
	return r
}

// exchange runs req through ServeDNS and unpacks the one response.
func exchange(t testing.TB, r *Resolver, req *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	w := dnswritertest.New(tcp)
	r.ServeDNS(w, req)
	if len(w.Replies()) != 1 {
		t.Fatalf("%d responses written, want 1", len(w.Replies()))
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(w.Replies()[0]); err != nil {
		t.Fatalf("unpacking response: %v\n% x", err, w.Replies()[0])
	}
	if resp.Id != req.Id {
		t.Fatalf("response id %d, want %d", resp.Id, req.Id)
	}
	return resp
}

// rrStrings formats records one per string, fields separated by single
// spaces, sorted.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}
