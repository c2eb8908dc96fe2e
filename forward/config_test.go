package forward

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func upstreamAddrs(f *Forwarder) []string {
	var s []string
	for _, u := range f.Stats().Upstreams {
		s = append(s, u.Addr)
	}
	return s
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvConf(t *testing.T) {
	const conf = `# written by a test
; another comment
search default.svc.cluster.local svc.cluster.local cluster.local
domain example.internal
nameserver 127.0.0.1
nameserver	127.0.0.2   # trailing comment
nameserver ::1
nameserver 127.0.0.1
nameserver fe80::1%lo
nameserver not-an-ip
nameserver 127.0.0.3 extra
nameserver
nameserver 0.0.0.0
options ndots:5 timeout:1 attempts:2 edns0
`
	for _, tc := range []struct {
		name  string
		local []netip.AddrPort
		want  []string
	}{
		{"all", nil, []string{"127.0.0.1:53", "127.0.0.2:53", "[::1]:53", "[fe80::1%lo]:53"}},
		{"without local", []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("[::1]:53")},
			[]string{"127.0.0.2:53", "[fe80::1%lo]:53"}},
		{"local on another port", []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1053")},
			[]string{"127.0.0.1:53", "127.0.0.2:53", "[::1]:53", "[fe80::1%lo]:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(Config{ResolvConf: writeFile(t, conf), LocalAddrs: tc.local})
			if err != nil {
				t.Fatal(err)
			}
			if got := upstreamAddrs(f); !slices.Equal(got, tc.want) {
				t.Errorf("upstreams %q, want %q", got, tc.want)
			}
		})
	}

	// Upstreams win over resolv.conf, which is then not read.
	f, err := New(Config{Upstreams: []string{"127.0.0.9"}, ResolvConf: filepath.Join(t.TempDir(), "missing")})
	if err != nil {
		t.Fatal(err)
	}
	if got := upstreamAddrs(f); !slices.Equal(got, []string{"127.0.0.9:53"}) {
		t.Errorf("upstreams %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.conf")
	empty := writeFile(t, "search example.\noptions ndots:5\nnameserver bogus\n")
	local := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353"), netip.MustParseAddrPort("127.0.0.1:53")}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error
		is   error
	}{
		{"missing resolv.conf", Config{ResolvConf: missing}, missing, fs.ErrNotExist},
		{"no nameserver", Config{ResolvConf: empty}, empty + " names no valid nameserver", nil},
		{"host name", Config{Upstreams: []string{"dns.example.com"}}, `upstream "dns.example.com": want an IP address`, nil},
		{"host name with port", Config{Upstreams: []string{"dns.example.com:53"}}, `upstream "dns.example.com:53"`, nil},
		{"bad port", Config{Upstreams: []string{"127.0.0.1:99999"}}, `upstream "127.0.0.1:99999"`, nil},
		{"port 0", Config{Upstreams: []string{"127.0.0.1:0"}}, "port 0", nil},
		{"unspecified", Config{Upstreams: []string{"0.0.0.0"}}, "not a unicast address", nil},
		{"empty", Config{Upstreams: []string{""}}, `upstream ""`, nil},
		{"only local", Config{Upstreams: []string{"127.0.0.1:5353", "[::ffff:127.0.0.1]:53"}, LocalAddrs: local}, "default upstreams: no upstreams left", errNoUpstreams},
		{"stub without upstreams", Config{Upstreams: []string{"127.0.0.2"}, StubDomains: map[string][]string{"corp.example.": nil}}, `stub domain "corp.example.": no upstreams`, errNoUpstreams},
		{"stub only local", Config{Upstreams: []string{"127.0.0.2"}, StubDomains: map[string][]string{"corp.example.": {"127.0.0.1"}}, LocalAddrs: local}, `stub domain "corp.example.": no upstreams left`, errNoUpstreams},
		{"stub bad address", Config{Upstreams: []string{"127.0.0.2"}, StubDomains: map[string][]string{"corp.example.": {"nope"}}}, `stub domain "corp.example.": upstream "nope"`, nil},
		{"stub bad domain", Config{Upstreams: []string{"127.0.0.2"}, StubDomains: map[string][]string{"a..b": {"127.0.0.3"}}}, `stub domain "a..b": not a domain name`, nil},
		{"stub root", Config{Upstreams: []string{"127.0.0.2"}, StubDomains: map[string][]string{".": {"127.0.0.3"}}}, "the root", nil},
		{"stub twice", Config{Upstreams: []string{"127.0.0.2"}, StubDomains: map[string][]string{"corp.example": {"127.0.0.3"}, "CORP.example.": {"127.0.0.3"}}}, "given twice", nil},
		{"negative timeout", Config{Upstreams: []string{"127.0.0.2"}, Timeout: -time.Second}, "Timeout -1s is negative", nil},
		{"negative max TTL", Config{Upstreams: []string{"127.0.0.2"}, MaxTTL: -time.Second}, "MaxTTL", nil},
		{"negative in flight", Config{Upstreams: []string{"127.0.0.2"}, MaxInFlight: -1}, "MaxInFlight", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "forward: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one with %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

func TestUpstreamAddresses(t *testing.T) {
	local := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353"), netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("[fd00::53]:53")}
	f, err := New(Config{
		Upstreams: []string{
			"127.0.0.1:5353",    // local: dropped
			"::ffff:127.0.0.1",  // local, IPv4-mapped: dropped
			"[fd00::53]:53",     // local: dropped
			"127.0.0.2",         // port 53
			"127.0.0.3:5353",    // own port
			"[::1]",             // brackets without port
			"::1",               // same again: once
			" 127.0.0.2:53 ",    // same again: once
			"[fd00::54%lo]:853", // zone and port
		},
		StubDomains: map[string][]string{"corp.example": {"127.0.0.3:5353", "127.0.0.4"}},
		LocalAddrs:  local,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.2:53", "127.0.0.3:5353", "[::1]:53", "[fd00::54%lo]:853", "127.0.0.4:53"}
	if got := upstreamAddrs(f); !slices.Equal(got, want) {
		t.Errorf("upstreams %q, want %q", got, want)
	}
	if n := len(f.defaults); n != 4 {
		t.Errorf("%d default upstreams", n)
	}
	if ups := f.stubs["corp.example."]; len(ups) != 2 || ups[0] != f.defaults[1] {
		t.Errorf("stub upstreams not shared with the defaults: %v", ups)
	}
}

func TestDefaults(t *testing.T) {
	f, err := New(Config{Upstreams: []string{"127.0.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := settings{
		maxInFlight: DefaultMaxInFlight, timeout: DefaultTimeout, cacheSize: DefaultCacheSize,
		maxTTL: 3600, maxNeg: 300, serveStale: DefaultServeStale, hcInterval: DefaultHealthCheckInterval,
	}
	if f.s != want {
		t.Errorf("settings %+v, want %+v", f.s, want)
	}
	if cap(f.sem) != DefaultMaxInFlight || f.cache == nil {
		t.Error("semaphore or cache not set up")
	}
	f, err = New(Config{Upstreams: []string{"127.0.0.2"}, CacheSize: -1})
	if err != nil || f.cache != nil {
		t.Errorf("CacheSize -1: cache %v, err %v", f.cache, err)
	}
}
