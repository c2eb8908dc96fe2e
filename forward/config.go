package forward

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config configures a Forwarder. Zero values take the defaults below.
type Config struct {
	// Upstreams are the default upstream servers: IP literals, with a port
	// or without one (port 53). When empty, the nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is read for nameservers when Upstreams is empty;
	// DefaultResolvConf when empty.
	ResolvConf string
	// StubDomains maps a domain to the upstreams (as in Upstreams) that
	// answer names in it instead of the default ones; the longest matching
	// domain wins.
	StubDomains map[string][]string
	// MaxInFlight bounds the client queries waiting on upstreams at once;
	// queries beyond it are answered stale or SERVFAIL at once.
	// DefaultMaxInFlight when zero.
	MaxInFlight int
	// Timeout bounds each attempt at an upstream (a TCP retry is an attempt
	// of its own); DefaultTimeout when zero.
	Timeout time.Duration
	// CacheSize is the number of cached answers; DefaultCacheSize when zero.
	// A negative size disables the cache (and serve-stale with it).
	CacheSize int
	// MaxTTL caps the TTL of positive answers, MaxNegativeTTL that of
	// negative ones, cached and passed on alike (whole seconds; a cap under
	// a second disables that kind of caching); DefaultMaxTTL and
	// DefaultMaxNegativeTTL when zero.
	MaxTTL, MaxNegativeTTL time.Duration
	// ServeStale is how long past its expiry a cached answer may be served,
	// with TTL StaleTTL, when no upstream answers; DefaultServeStale when
	// zero, disabled when negative.
	ServeStale time.Duration
	// HealthCheckInterval is the period of the probes of down upstreams,
	// and of the retries of loop probes; DefaultHealthCheckInterval when
	// zero.
	HealthCheckInterval time.Duration
	// Logger receives the Forwarder's logs; none when nil.
	Logger *slog.Logger
	// LocalAddrs are kdnsd's own DNS addresses (IP and port): an upstream
	// that is one of them is dropped, since forwarding to it would loop.
	LocalAddrs []netip.AddrPort
}

// Defaults, and fixed parameters.
const (
	DefaultResolvConf          = "/etc/resolv.conf"
	DefaultMaxInFlight         = 1000
	DefaultTimeout             = 2 * time.Second
	DefaultCacheSize           = 10000
	DefaultMaxTTL              = time.Hour
	DefaultMaxNegativeTTL      = 5 * time.Minute
	DefaultServeStale          = time.Hour
	DefaultHealthCheckInterval = 500 * time.Millisecond

	// MaxFails is the number of consecutive failed attempts after which an
	// upstream is marked down.
	MaxFails = 2
	// StaleTTL is the TTL of every record of a stale answer (RFC 8767).
	StaleTTL = 30
	// UDPSize is the EDNS payload size advertised to upstreams and clients,
	// and the largest UDP reply sent to a client (DNS flag day 2020).
	UDPSize = 1232
)

// settings is a Config with defaults applied and durations converted.
type settings struct {
	maxInFlight    int
	timeout        time.Duration
	cacheSize      int // < 0: no cache
	maxTTL, maxNeg uint32
	serveStale     time.Duration // < 0: none
	hcInterval     time.Duration
}

func (cfg *Config) settings() (settings, error) {
	s := settings{
		maxInFlight: cfg.MaxInFlight,
		timeout:     cfg.Timeout,
		cacheSize:   cfg.CacheSize,
		serveStale:  cfg.ServeStale,
		hcInterval:  cfg.HealthCheckInterval,
	}
	maxTTL, maxNeg := cfg.MaxTTL, cfg.MaxNegativeTTL
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &s.timeout, DefaultTimeout},
		{"HealthCheckInterval", &s.hcInterval, DefaultHealthCheckInterval},
		{"MaxTTL", &maxTTL, DefaultMaxTTL},
		{"MaxNegativeTTL", &maxNeg, DefaultMaxNegativeTTL},
	} {
		if *d.v < 0 {
			return s, fmt.Errorf("%s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	s.maxTTL, s.maxNeg = seconds(maxTTL), seconds(maxNeg)
	switch {
	case s.maxInFlight < 0:
		return s, fmt.Errorf("MaxInFlight %d is negative", s.maxInFlight)
	case s.maxInFlight == 0:
		s.maxInFlight = DefaultMaxInFlight
	}
	if s.cacheSize == 0 {
		s.cacheSize = DefaultCacheSize
	}
	if s.serveStale == 0 {
		s.serveStale = DefaultServeStale
	}
	return s, nil
}

func seconds(d time.Duration) uint32 {
	return uint32(min(d/time.Second, math.MaxUint32))
}

// parseUpstream parses an upstream address: an IP literal, with a port or
// without one (port 53), IPv6 in brackets or not.
func parseUpstream(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		a, err2 := netip.ParseAddr(h)
		if err2 != nil {
			return ap, fmt.Errorf("upstream %q: want an IP address with an optional port", s)
		}
		ap = netip.AddrPortFrom(a, 53)
	}
	a := ap.Addr()
	switch {
	case ap.Port() == 0:
		return ap, fmt.Errorf("upstream %q: port 0", s)
	case a.IsUnspecified(), a.IsMulticast():
		return ap, fmt.Errorf("upstream %q: not a unicast address", s)
	}
	return ap, nil
}

// readResolvConf returns the nameservers of a resolv.conf file, and the
// lines it skipped as invalid.
func readResolvConf(path string) (ns []netip.AddrPort, skipped []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "nameserver" {
			continue
		}
		if len(fields) != 2 {
			skipped = append(skipped, strconv.Itoa(n)+": "+sc.Text())
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			skipped = append(skipped, strconv.Itoa(n)+": "+sc.Text())
			continue
		}
		ap := netip.AddrPortFrom(a, 53)
		if !slices.Contains(ns, ap) {
			ns = append(ns, ap)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return ns, skipped, nil
}

// stubDomain checks a stub domain and returns its canonical (lower-case,
// fully qualified) form.
func stubDomain(d string) (string, error) {
	c := dns.CanonicalName(strings.TrimSpace(d))
	if _, ok := dns.IsDomainName(c); !ok || strings.HasPrefix(c, ".") && c != "." {
		return "", fmt.Errorf("stub domain %q: not a domain name", d)
	}
	if c == "." {
		return "", fmt.Errorf("stub domain %q: the root is what Upstreams are for", d)
	}
	return c, nil
}

var errNoUpstreams = errors.New("no upstreams")
