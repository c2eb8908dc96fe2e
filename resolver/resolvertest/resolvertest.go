// Package resolvertest holds a cluster state and the DNS answers kdnsd must
// give for it, shared by the resolver's unit tests and by tests of whole
// clusters fed by a real API server.
//
// Fixture returns the services and endpoint slices; every one of them can be
// created as a Kubernetes object (services with explicit cluster IPs from
// 10.96.0.0/16 and fd00:10:96::/112, selector-less, with their slices created
// by hand), except default/kubernetes, which the API server creates itself
// with cluster IP 10.96.0.1 (its endpoint slice, the API server's address,
// is left out: no case depends on it). Cases returns the queries and the
// responses they must get under the zone cluster.local. with TTL 30; Check
// compares a response with a case.
//
// Some cases hold only under some configuration (Case.Requires): a pod mode,
// no Forward handler, name server addresses taken from kube-system/kube-dns,
// or one transport (a UDP answer is truncated where the TCP answer is
// whole). Select picks the cases that hold under a configuration. Cases that hold with a Forward handler hold whatever its
// upstreams answer, or whether they answer at all: none depends on a name
// outside the zone.
package resolvertest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
)

// Zone and TTL the cases assume.
const (
	Zone = "cluster.local."
	TTL  = 30
)

// Pod modes, as resolver.Config.PodMode names them.
const (
	PodInsecure = "insecure"
	PodVerified = "verified"
	PodDisabled = "disabled"
)

// Requires is the configuration a case holds under; the zero value holds
// under any.
type Requires struct {
	// PodModes, when not empty, lists the pod modes the case holds in.
	PodModes []string
	// NoForward: the case holds only without a Forward handler (the query
	// is REFUSED rather than forwarded).
	NoForward bool
	// KubeDNSNameServer: the case holds only when the addresses of
	// ns.dns.<zone> come from the service kube-system/kube-dns (no
	// name server addresses configured).
	KubeDNSNameServer bool
	// Transport, when not empty, is the only one the case holds over: UDP
	// or TCP.
	Transport string
}

// Transports, as Requires.Transport names them.
const (
	UDP = "udp"
	TCP = "tcp"
)

// MaxUDPSize is the largest UDP response, whatever payload size the
// client's EDNS record advertises, and the payload size a response's EDNS
// record advertises (DNS flag day 2020; RFC 6891 section 6.2.5).
const MaxUDPSize = 1232

// Config describes a server's configuration for Select.
type Config struct {
	PodMode    string // "" means insecure
	Forward    bool   // a Forward handler is set
	NSAddrsSet bool   // name server addresses are configured
	TCP        bool   // queries are asked over TCP, not UDP
}

// Holds reports whether the case holds under cfg.
func (c *Case) Holds(cfg Config) bool {
	mode := cfg.PodMode
	if mode == "" {
		mode = PodInsecure
	}
	r := &c.Requires
	transport := UDP
	if cfg.TCP {
		transport = TCP
	}
	return (len(r.PodModes) == 0 || slices.Contains(r.PodModes, mode)) &&
		!(r.NoForward && cfg.Forward) && !(r.KubeDNSNameServer && cfg.NSAddrsSet) &&
		(r.Transport == "" || r.Transport == transport)
}

// Select returns the cases that hold under cfg.
func Select(cases []Case, cfg Config) []Case {
	var out []Case
	for _, c := range cases {
		if c.Holds(cfg) {
			out = append(out, c)
		}
	}
	return out
}

// Case is one query, as Request builds it, and the response it must get.
// Records are in the form Canonical gives; the order within a section does
// not matter (answers rotate).
type Case struct {
	Name string // question name, echoed with its case
	Type uint16
	// EDNS, when not zero, is the payload size of the query's EDNS record;
	// without it the query has none. The response must then have one
	// advertising MaxUDPSize.
	EDNS  uint16
	Rcode int
	// Answer, Authority and Additional records. A negative answer's
	// authority is the zone's SOA, whose serial (the Raft index) is not
	// compared: write any number.
	Answer, Authority, Additional []string
	// NotAuthoritative: AA must be clear (REFUSED); else it must be set.
	NotAuthoritative bool
	// Truncated: TC must be set, Answer lists the records the answer may
	// hold (it must hold some, not all of them), and the other sections
	// must be empty. Else TC must be clear.
	Truncated bool
	Requires  Requires
	// Note says what the case shows.
	Note string
}

// String names the case, for test names.
func (c *Case) String() string {
	s := dns.TypeToString[c.Type] + " " + c.Name
	if c.EDNS != 0 {
		s += fmt.Sprintf(" bufsize=%d", c.EDNS)
	}
	if c.Requires.Transport != "" {
		s += " " + c.Requires.Transport
	}
	if len(c.Requires.PodModes) > 0 {
		s += " pods=" + strings.Join(c.Requires.PodModes, ",")
	}
	return s
}

// Request returns the case's query, RD set.
func (c *Case) Request() *dns.Msg {
	m := new(dns.Msg).SetQuestion(c.Name, c.Type)
	if c.EDNS != 0 {
		m.SetEdns0(c.EDNS, false)
	}
	return m
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// BigEndpoints is the number of ready endpoints of the headless service
// kube-system/big, whose A answer does not fit in 512 octets, nor in
// MaxUDPSize.
const BigEndpoints = 100

// WideEndpoints is the number of ready endpoints of the headless service
// kube-system/wide, whose SRV answer fits in 4096 octets, not in MaxUDPSize.
const WideEndpoints = 30

// Fixture returns a new copy of the cluster state the cases are about.
//
// Its cluster IPs are all among the first 256 addresses of the service
// ranges (10.96.0.0/16, fd00:10:96::/112), the band kube-apiserver keeps for
// fixed IPs: test/cluster creates the fixture as Services next to other
// tests' Services, whose IPs the API server picks from the rest.
func Fixture() (services []*fsm.Service, slices []*fsm.EndpointSlice) {
	tcp := func(name string, port uint16) fsm.Port { return fsm.Port{Name: name, Protocol: "TCP", Port: port} }
	udp := func(name string, port uint16) fsm.Port { return fsm.Port{Name: name, Protocol: "UDP", Port: port} }
	services = []*fsm.Service{
		// Created by the API server itself.
		{Namespace: "default", Name: "kubernetes", Type: fsm.TypeClusterIP, ClusterIPs: addrs("10.96.0.1"),
			Ports: []fsm.Port{tcp("https", 443)}},
		// The cluster DNS service: the name server's addresses when none
		// are configured.
		{Namespace: "kube-system", Name: "kube-dns", Type: fsm.TypeClusterIP, ClusterIPs: addrs("10.96.0.10"),
			Ports: []fsm.Port{udp("dns", 53), tcp("dns-tcp", 53), tcp("metrics", 9153)}},
		// Dual-stack, with a named UDP port.
		{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP, ClusterIPs: addrs("10.96.0.110", "fd00:10:96::b0"),
			Ports: []fsm.Port{tcp("http", 80), udp("dns", 53)}},
		// Its one port is unnamed (the API allows that only for a lone port).
		{Namespace: "default", Name: "v4only", Type: fsm.TypeNodePort, ClusterIPs: addrs("10.96.0.111"),
			Ports: []fsm.Port{tcp("", 80)}},
		// IPv6 only.
		{Namespace: "other", Name: "db", Type: fsm.TypeLoadBalancer, ClusterIPs: addrs("fd00:10:96::20"),
			Ports: []fsm.Port{tcp("postgres", 5432)}},
		{Namespace: "default", Name: "ext", Type: fsm.TypeExternalName, ExternalName: "example.com"},
		// ExternalName services whose targets are in the zone: chased
		// there, to the end of the chain, a missing name, or a loop.
		{Namespace: "default", Name: "alias", Type: fsm.TypeExternalName, ExternalName: "web.default.svc.cluster.local"},
		{Namespace: "default", Name: "chain", Type: fsm.TypeExternalName, ExternalName: "alias.default.svc.cluster.local"},
		{Namespace: "default", Name: "dangling", Type: fsm.TypeExternalName, ExternalName: "nope.default.svc.cluster.local"},
		{Namespace: "default", Name: "loop-a", Type: fsm.TypeExternalName, ExternalName: "loop-b.default.svc.cluster.local"},
		{Namespace: "default", Name: "loop-b", Type: fsm.TypeExternalName, ExternalName: "loop-a.default.svc.cluster.local"},
		// Headless, dual-stack (one slice per family).
		{Namespace: "default", Name: "hl", Type: fsm.TypeClusterIP, Headless: true,
			Ports: []fsm.Port{tcp("http", 80)}},
		{Namespace: "default", Name: "hlpub", Type: fsm.TypeClusterIP, Headless: true, PublishNotReadyAddresses: true},
		{Namespace: "default", Name: "empty", Type: fsm.TypeClusterIP, Headless: true},
		{Namespace: "kube-system", Name: "big", Type: fsm.TypeClusterIP, Headless: true},

		// Issue 10 (branch dns-spec): an IPv6-only headless service whose
		// endpoints have no hostname, one address ending in "::"; a headless
		// service with a named port and no ready endpoint, alone in its
		// namespace; a headless service whose SRV answer fits in 4096 octets,
		// not in MaxUDPSize.
		{Namespace: "kube-system", Name: "wide", Type: fsm.TypeClusterIP, Headless: true, Ports: []fsm.Port{tcp("http", 80)}},
		{Namespace: "default", Name: "hl6", Type: fsm.TypeClusterIP, Headless: true, Ports: []fsm.Port{tcp("http", 80)}},
		{Namespace: "standby", Name: "idle", Type: fsm.TypeClusterIP, Headless: true, Ports: []fsm.Port{tcp("http", 80)}},
	}
	slices = []*fsm.EndpointSlice{
		{Namespace: "default", Name: "hl-ipv4", Service: "hl", Ports: []fsm.Port{tcp("http", 8080)},
			Endpoints: []fsm.Endpoint{
				{Addresses: addrs("10.244.1.1"), Hostname: "web-0", Ready: true},
				{Addresses: addrs("10.244.1.2"), Ready: true},
				{Addresses: addrs("10.244.1.3"), Hostname: "web-2"}, // not ready
			}},
		{Namespace: "default", Name: "hl-ipv6", Service: "hl", Ports: []fsm.Port{tcp("http", 8080)},
			Endpoints: []fsm.Endpoint{{Addresses: addrs("fd00:10:244::1:1"), Hostname: "web-0", Ready: true}}},
		{Namespace: "default", Name: "hlpub-ipv4", Service: "hlpub",
			Endpoints: []fsm.Endpoint{{Addresses: addrs("10.244.2.1")}}}, // not ready

		// Issue 10 (branch dns-spec).
		{Namespace: "default", Name: "hl6-ipv6", Service: "hl6", Ports: []fsm.Port{tcp("http", 8080)},
			Endpoints: []fsm.Endpoint{
				{Addresses: addrs("fd00:10:244:6::"), Ready: true},
				{Addresses: addrs("fd00:10:244::6:1"), Ready: true},
			}},
		{Namespace: "standby", Name: "idle-ipv4", Service: "idle", Ports: []fsm.Port{tcp("http", 8080)},
			Endpoints: []fsm.Endpoint{{Addresses: addrs("10.244.4.1")}}}, // not ready
	}
	big := &fsm.EndpointSlice{Namespace: "kube-system", Name: "big-ipv4", Service: "big"}
	for i := range BigEndpoints {
		big.Endpoints = append(big.Endpoints, fsm.Endpoint{Addresses: addrs(fmt.Sprintf("10.244.3.%d", i+1)), Ready: true})
	}
	slices = append(slices, big)
	wide := &fsm.EndpointSlice{Namespace: "kube-system", Name: "wide-ipv4", Service: "wide", Ports: []fsm.Port{tcp("http", 8080)}}
	for i := range WideEndpoints {
		wide.Endpoints = append(wide.Endpoints, fsm.Endpoint{Addresses: addrs(fmt.Sprintf("10.244.7.%d", i+1)), Ready: true})
	}
	slices = append(slices, wide)
	return services, slices
}

// FixtureNamespaces returns the namespaces of the fixture: those of its
// services and pods, and quiet, which has neither.
func FixtureNamespaces() []string {
	return []string{"default", "kube-system", "other", "quiet", "standby"}
}

// FixturePods returns the fixture's pods, as a leader in verified mode
// replicates them: every endpoint of default's services is a pod that has
// not terminated (pending or running); other/solo is behind no service; the
// endpoints of kube-system/big have no pod. Terminated (phase Succeeded)
// holds a pod that has terminated, which is never replicated: a test that
// creates the fixture in an API server creates it too, and no case may
// find its address (10.244.9.9) in verified mode.
func FixturePods() (pods []*fsm.Pod, terminated *fsm.Pod) {
	pods = []*fsm.Pod{
		{Namespace: "default", Name: "web-0", IPs: addrs("10.244.1.1", "fd00:10:244::1:1")},
		{Namespace: "default", Name: "web-x", IPs: addrs("10.244.1.2")},
		{Namespace: "default", Name: "web-2", IPs: addrs("10.244.1.3")},
		{Namespace: "default", Name: "pub-0", IPs: addrs("10.244.2.1")},
		{Namespace: "other", Name: "solo", IPs: addrs("10.244.5.5")},
	}
	return pods, &fsm.Pod{Namespace: "default", Name: "done", IPs: addrs("10.244.9.9")}
}

// FixtureView returns the View of the whole fixture, with namespaces and
// pods tracked, as a leader in verified mode writes it.
func FixtureView(index uint64) *fsm.View {
	services, slices := Fixture()
	pods, _ := FixturePods()
	r := fsm.Records{Services: services, Slices: slices, Namespaces: FixtureNamespaces(), Pods: pods,
		Tracked: fsm.Tracked{Namespaces: true, Pods: true}}
	return r.View(index)
}

// Canonical formats a record as Check compares it: its presentation form
// with fields separated by single spaces.
func Canonical(rr dns.RR) string {
	return strings.Join(strings.Fields(rr.String()), " ")
}

// soaSerial masks the serial of an SOA record in canonical form.
func soaSerial(s string) string {
	f := strings.Fields(s)
	if len(f) == 11 && strings.EqualFold(f[3], "SOA") {
		f[6] = "*"
		return strings.Join(f, " ")
	}
	return s
}

// Check compares reply, the response to c's Request, with c. The order of
// records within a section is not compared; nor is an SOA's serial.
func Check(reply *dns.Msg, c Case) error {
	if reply == nil {
		return fmt.Errorf("%s: no reply", c.String())
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if reply.Rcode != c.Rcode {
		fail("rcode %s, want %s", dns.RcodeToString[reply.Rcode], dns.RcodeToString[c.Rcode])
	}
	if reply.Authoritative == c.NotAuthoritative {
		fail("AA %v, want %v", reply.Authoritative, !c.NotAuthoritative)
	}
	if !reply.Response || reply.Truncated != c.Truncated || reply.RecursionAvailable || reply.Opcode != dns.OpcodeQuery {
		fail("header %+v", reply.MsgHdr)
	}
	if opt := reply.IsEdns0(); (opt != nil) != (c.EDNS != 0) || opt != nil && opt.UDPSize() != MaxUDPSize {
		fail("EDNS record %v, want one advertising %d octets: %v", opt, MaxUDPSize, c.EDNS != 0)
	}
	want := dns.Question{Name: c.Name, Qtype: c.Type, Qclass: dns.ClassINET}
	if len(reply.Question) != 1 || reply.Question[0] != want {
		fail("question %v, want %v", reply.Question, want)
	}
	answer := c.Answer
	if c.Truncated {
		// Some of the records, whichever the rotation put first.
		got := texts(reply.Answer)
		if len(got) == 0 || len(got) >= len(c.Answer) ||
			slices.ContainsFunc(got, func(s string) bool { return !slices.Contains(c.Answer, s) }) {
			fail("truncated answer of %d records, want some of the %d listed:\n  got %q", len(got), len(c.Answer), got)
		}
		answer = got
	}
	for _, s := range []struct {
		name      string
		got, want []string
	}{
		{"answer", texts(reply.Answer), answer},
		{"authority", texts(reply.Ns), c.Authority},
		{"additional", texts(reply.Extra), c.Additional},
	} {
		want := make([]string, len(s.want))
		for i, w := range s.want {
			want[i] = soaSerial(strings.Join(strings.Fields(w), " "))
		}
		slices.Sort(want)
		if !slices.Equal(s.got, want) {
			fail("%s:\n  got  %q\n  want %q", s.name, s.got, want)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", c.String(), strings.Join(errs, "; "))
	}
	return nil
}

// texts returns the canonical forms of rrs, OPT left out, SOA serials
// masked, sorted.
func texts(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, soaSerial(Canonical(rr)))
	}
	slices.Sort(out)
	return out
}
