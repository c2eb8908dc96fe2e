package resolver

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
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

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	tcp    bool
	writes [][]byte
}

func (w *recorder) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *recorder) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}

func (w *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *recorder) Write(b []byte) (int, error) {
	w.writes = append(w.writes, slices.Clone(b))
	return len(b), nil
}

func (*recorder) Close() error        { return nil }
func (*recorder) TsigStatus() error   { return nil }
func (*recorder) TsigTimersOnly(bool) {}
func (*recorder) Hijack()             {}

// exchange runs req through ServeDNS and unpacks the one response.
func exchange(t testing.TB, r *Resolver, req *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	w := &recorder{tcp: tcp}
	r.ServeDNS(w, req)
	if len(w.writes) != 1 {
		t.Fatalf("%d responses written, want 1", len(w.writes))
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(w.writes[0]); err != nil {
		t.Fatalf("unpacking response: %v\n% x", err, w.writes[0])
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
