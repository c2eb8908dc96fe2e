package resolvertest

import (
	"github.com/miekg/dns"
)

// Record builders, in canonical form, for the zone and TTL of the cases.
func rr(owner, typ, rdata string) string { return owner + " 30 IN " + typ + " " + rdata }
func a(owner, ip string) string          { return rr(owner, "A", ip) }
func aaaa(owner, ip string) string       { return rr(owner, "AAAA", ip) }
func srv(owner string, weight, port int, target string) string {
	return rr(owner, "SRV", "0 "+itoa(weight)+" "+itoa(port)+" "+target)
}
func ptr(owner, target string) string { return rr(owner, "PTR", target) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// soa is the zone's SOA (serial not compared) under an apex spelled as in
// the question.
func soa(apex string) string {
	return rr(apex, "SOA", "ns.dns."+apex+" hostmaster."+apex+" 0 7200 1800 86400 30")
}

var (
	soaZ      = soa(Zone)
	insecure  = Requires{PodModes: []string{PodInsecure}}
	disabled  = Requires{PodModes: []string{PodDisabled}}
	podsOn    = Requires{PodModes: []string{PodInsecure, PodVerified}}
	notSecure = Requires{PodModes: []string{PodVerified, PodDisabled}}
	noFwd     = Requires{NoForward: true}
	kubeDNSNS = Requires{KubeDNSNameServer: true}
)

// Names of the fixture.
const (
	kubernetes = "kubernetes.default.svc.cluster.local."
	kubeDNS    = "kube-dns.kube-system.svc.cluster.local."
	web        = "web.default.svc.cluster.local."
	v4only     = "v4only.default.svc.cluster.local."
	db         = "db.other.svc.cluster.local."
	ext        = "ext.default.svc.cluster.local."
	alias      = "alias.default.svc.cluster.local."
	chain      = "chain.default.svc.cluster.local."
	dangling   = "dangling.default.svc.cluster.local."
	loopA      = "loop-a.default.svc.cluster.local."
	loopB      = "loop-b.default.svc.cluster.local."
	hl         = "hl.default.svc.cluster.local."
	hlpub      = "hlpub.default.svc.cluster.local."
	web0       = "web-0.hl.default.svc.cluster.local."
	ep2        = "10-244-1-2.hl.default.svc.cluster.local."
	nsName     = "ns.dns.cluster.local."
)

// Cases returns the queries and answers for Fixture, under Zone and TTL.
func Cases() []Case {
	nx := func(name string, typ uint16, note string) Case {
		return Case{Name: name, Type: typ, Rcode: dns.RcodeNameError, Authority: []string{soaZ}, Note: note}
	}
	nodata := func(name string, typ uint16, note string) Case {
		return Case{Name: name, Type: typ, Authority: []string{soaZ}, Note: note}
	}
	refused := func(name string, typ uint16, req Requires, note string) Case {
		return Case{Name: name, Type: typ, Rcode: dns.RcodeRefused, NotAuthoritative: true, Requires: req, Note: note}
	}
	with := func(c Case, r Requires) Case { c.Requires = r; return c }

	return []Case{
		// The zone apex, the name server and the schema version.
		{Name: Zone, Type: dns.TypeSOA, Answer: []string{soaZ}, Note: "SOA at the apex"},
		{Name: "CLUSTER.Local.", Type: dns.TypeSOA, Answer: []string{soa("CLUSTER.Local.")}, Note: "case echoed in names compressed against the question"},
		{Name: Zone, Type: dns.TypeNS, Answer: []string{rr(Zone, "NS", nsName)}, Additional: []string{a(nsName, "10.96.0.10")},
			Requires: kubeDNSNS, Note: "NS at the apex, with its address as glue"},
		{Name: nsName, Type: dns.TypeA, Answer: []string{a(nsName, "10.96.0.10")}, Requires: kubeDNSNS,
			Note: "the NS name resolves: cluster IP of kube-system/kube-dns"},
		with(nodata(nsName, dns.TypeAAAA, "kube-dns is IPv4 only"), kubeDNSNS),
		nodata("dns.cluster.local.", dns.TypeA, "empty non-terminal above the NS name"),
		nodata(Zone, dns.TypeA, "the apex has SOA and NS only"),
		{Name: "dns-version.cluster.local.", Type: dns.TypeTXT, Answer: []string{rr("dns-version.cluster.local.", "TXT", `"1.1.0"`)}},
		nodata("dns-version.cluster.local.", dns.TypeA, ""),

		// ClusterIP services: A and AAAA per family, SRV per named port.
		{Name: kubernetes, Type: dns.TypeA, Answer: []string{a(kubernetes, "10.96.0.1")}, Note: "the API server's own service"},
		{Name: "_https._tcp." + kubernetes, Type: dns.TypeSRV,
			Answer:     []string{srv("_https._tcp."+kubernetes, 100, 443, kubernetes)},
			Additional: []string{a(kubernetes, "10.96.0.1")}},
		{Name: kubeDNS, Type: dns.TypeA, Answer: []string{a(kubeDNS, "10.96.0.10")}},
		{Name: "_dns._udp." + kubeDNS, Type: dns.TypeSRV,
			Answer:     []string{srv("_dns._udp."+kubeDNS, 100, 53, kubeDNS)},
			Additional: []string{a(kubeDNS, "10.96.0.10")}},
		{Name: "_dns-tcp._tcp." + kubeDNS, Type: dns.TypeSRV,
			Answer:     []string{srv("_dns-tcp._tcp."+kubeDNS, 100, 53, kubeDNS)},
			Additional: []string{a(kubeDNS, "10.96.0.10")}},
		{Name: web, Type: dns.TypeA, Answer: []string{a(web, "10.96.0.110")}, Note: "dual-stack"},
		{Name: web, Type: dns.TypeAAAA, Answer: []string{aaaa(web, "fd00:10:96::b0")}},
		{Name: "Web.Default.SVC.Cluster.LOCAL.", Type: dns.TypeA, Answer: []string{a("Web.Default.SVC.Cluster.LOCAL.", "10.96.0.110")},
			Note: "case-insensitive, case echoed"},
		{Name: web, Type: dns.TypeANY, Answer: []string{a(web, "10.96.0.110")}, Note: "ANY: one RRset (RFC 8482)"},
		nodata(web, dns.TypeMX, "no such type"),
		nodata(web, dns.TypeTXT, ""),
		{Name: "_http._tcp." + web, Type: dns.TypeSRV,
			Answer:     []string{srv("_http._tcp."+web, 100, 80, web)},
			Additional: []string{a(web, "10.96.0.110"), aaaa(web, "fd00:10:96::b0")}},
		{Name: "_DNS._UDP." + web, Type: dns.TypeSRV,
			Answer:     []string{srv("_DNS._UDP."+web, 100, 53, web)},
			Additional: []string{a(web, "10.96.0.110"), aaaa(web, "fd00:10:96::b0")}},
		nodata("_http._tcp."+web, dns.TypeA, "SRV name, other type"),
		nodata("_tcp."+web, dns.TypeSRV, "empty non-terminal _<proto>"),
		nx("_http._udp."+web, dns.TypeSRV, "port http is TCP"),
		nx("_https._tcp."+web, dns.TypeSRV, "no such port"),
		nx("_80._tcp."+v4only, dns.TypeSRV, "unnamed ports have no SRV"),
		nx("x."+web, dns.TypeA, "nothing below a ClusterIP service but SRV names"),
		{Name: v4only, Type: dns.TypeA, Answer: []string{a(v4only, "10.96.0.111")}, Note: "NodePort"},
		nodata(v4only, dns.TypeAAAA, "single-stack"),
		nx("_tcp."+v4only, dns.TypeSRV, "no named port"),
		{Name: db, Type: dns.TypeAAAA, Answer: []string{aaaa(db, "fd00:10:96::20")}, Note: "LoadBalancer, IPv6 only"},
		nodata(db, dns.TypeA, ""),
		{Name: "_postgres._tcp." + db, Type: dns.TypeSRV,
			Answer:     []string{srv("_postgres._tcp."+db, 100, 5432, db)},
			Additional: []string{aaaa(db, "fd00:10:96::20")}},

		// PTR of cluster IPs.
		{Name: "1.0.96.10.in-addr.arpa.", Type: dns.TypePTR, Answer: []string{ptr("1.0.96.10.in-addr.arpa.", kubernetes)}},
		{Name: "110.0.96.10.in-addr.arpa.", Type: dns.TypePTR, Answer: []string{ptr("110.0.96.10.in-addr.arpa.", web)}},
		{Name: "110.0.96.10.IN-ADDR.Arpa.", Type: dns.TypePTR, Answer: []string{ptr("110.0.96.10.IN-ADDR.Arpa.", web)}, Note: "case echoed"},
		{Name: "0.b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", Type: dns.TypePTR,
			Answer: []string{ptr("0.b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", web)}},
		{Name: "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", Type: dns.TypePTR,
			Answer: []string{ptr("0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", db)}},
		{Name: "110.0.96.10.in-addr.arpa.", Type: dns.TypeANY, Answer: []string{ptr("110.0.96.10.in-addr.arpa.", web)}},

		// Headless services: ready endpoints (not-ready ones with
		// publishNotReadyAddresses), hostnames, dashed addresses, SRV per
		// endpoint, PTR of endpoints with a hostname.
		{Name: hl, Type: dns.TypeA, Answer: []string{a(hl, "10.244.1.1"), a(hl, "10.244.1.2")}, Note: "not-ready 10.244.1.3 left out"},
		{Name: hl, Type: dns.TypeAAAA, Answer: []string{aaaa(hl, "fd00:10:244::1:1")}},
		{Name: web0, Type: dns.TypeA, Answer: []string{a(web0, "10.244.1.1")}, Note: "hostname"},
		{Name: web0, Type: dns.TypeAAAA, Answer: []string{aaaa(web0, "fd00:10:244::1:1")}, Note: "the same hostname in the IPv6 slice"},
		{Name: ep2, Type: dns.TypeA, Answer: []string{a(ep2, "10.244.1.2")}, Note: "endpoint without hostname: dashed address"},
		nodata(ep2, dns.TypeAAAA, ""),
		nx("10-244-1-1.hl.default.svc.cluster.local.", dns.TypeA, "an endpoint with a hostname is named by it only"),
		nx("web-2.hl.default.svc.cluster.local.", dns.TypeA, "not ready"),
		nx("10-244-1-3.hl.default.svc.cluster.local.", dns.TypeA, "not ready"),
		{Name: "_http._tcp." + hl, Type: dns.TypeSRV,
			Answer:     []string{srv("_http._tcp."+hl, 50, 8080, ep2), srv("_http._tcp."+hl, 50, 8080, web0)},
			Additional: []string{a(ep2, "10.244.1.2"), a(web0, "10.244.1.1"), aaaa(web0, "fd00:10:244::1:1")},
			Note:       "endpoint port numbers, one record per endpoint name"},
		{Name: "1.1.244.10.in-addr.arpa.", Type: dns.TypePTR, Answer: []string{ptr("1.1.244.10.in-addr.arpa.", web0)}},
		{Name: "1.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa.", Type: dns.TypePTR,
			Answer: []string{ptr("1.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa.", web0)}},
		{Name: hlpub, Type: dns.TypeA, Answer: []string{a(hlpub, "10.244.2.1")}, Note: "publishNotReadyAddresses"},
		{Name: "10-244-2-1." + hlpub, Type: dns.TypeA, Answer: []string{a("10-244-2-1."+hlpub, "10.244.2.1")}},

		// ExternalName: a CNAME, for every type. Other types than CNAME
		// (and ANY) chase it: in the zone from the index; outside it
		// through Forward, so only without Forward is the answer the
		// CNAME alone whatever the upstreams say.
		{Name: ext, Type: dns.TypeA, Answer: []string{rr(ext, "CNAME", "example.com.")}, Requires: noFwd,
			Note: "the target outside the zone is chased through Forward only"},
		{Name: ext, Type: dns.TypeAAAA, Answer: []string{rr(ext, "CNAME", "example.com.")}, Requires: noFwd},
		{Name: ext, Type: dns.TypeCNAME, Answer: []string{rr(ext, "CNAME", "example.com.")}, Note: "never chased"},
		{Name: ext, Type: dns.TypeANY, Answer: []string{rr(ext, "CNAME", "example.com.")}, Note: "the CNAME answers ANY"},
		nx("_http._tcp."+ext, dns.TypeSRV, ""),
		{Name: alias, Type: dns.TypeA, Answer: []string{rr(alias, "CNAME", web), a(web, "10.96.0.110")},
			Note: "a target in the zone is chased from the index"},
		{Name: alias, Type: dns.TypeAAAA, Answer: []string{rr(alias, "CNAME", web), aaaa(web, "fd00:10:96::b0")}},
		{Name: "ALIAS.default.svc.cluster.local.", Type: dns.TypeA,
			Answer: []string{rr("ALIAS.default.svc.cluster.local.", "CNAME", web), a(web, "10.96.0.110")}, Note: "case echoed"},
		{Name: alias, Type: dns.TypeCNAME, Answer: []string{rr(alias, "CNAME", web)}},
		{Name: alias, Type: dns.TypeMX, Answer: []string{rr(alias, "CNAME", web)}, Authority: []string{soaZ},
			Note: "the target has no such type: NODATA after the CNAME"},
		{Name: chain, Type: dns.TypeA, Answer: []string{rr(chain, "CNAME", alias), rr(alias, "CNAME", web), a(web, "10.96.0.110")},
			Note: "a chain of ExternalName services"},
		{Name: dangling, Type: dns.TypeA, Rcode: dns.RcodeNameError, Answer: []string{rr(dangling, "CNAME", "nope.default.svc.cluster.local.")},
			Authority: []string{soaZ}, Note: "the rcode is the last name's (RFC 6604)"},
		{Name: loopA, Type: dns.TypeA, Answer: []string{rr(loopA, "CNAME", loopB), rr(loopB, "CNAME", loopA)},
			Note: "a loop ends the chain"},

		// Existing parents are NODATA, the rest NXDOMAIN. A namespace
		// exists when it has a service.
		nodata("default.svc.cluster.local.", dns.TypeA, "namespace with services"),
		nodata("kube-system.svc.cluster.local.", dns.TypeA, ""),
		nodata("svc.cluster.local.", dns.TypeA, ""),
		nx("nons.svc.cluster.local.", dns.TypeA, "namespace without services"),
		nx("web.nons.svc.cluster.local.", dns.TypeA, ""),
		nx("nope.default.svc.cluster.local.", dns.TypeA, ""),
		nx("a.b.web.default.svc.cluster.local.", dns.TypeA, ""),
		nx("nope.cluster.local.", dns.TypeA, ""),
		{Name: "Nope.Cluster.Local.", Type: dns.TypeA, Rcode: dns.RcodeNameError, Authority: []string{soa("Cluster.Local.")}},
		nx(`we\.b.default.svc.cluster.local.`, dns.TypeA, "a dot inside a label"),

		// Pod names.
		with(Case{Name: "10-244-1-1.default.pod.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-244-1-1.default.pod.cluster.local.", "10.244.1.1")}}, podsOn),
		with(Case{Name: "10-244-1-3.default.pod.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-244-1-3.default.pod.cluster.local.", "10.244.1.3")}, Note: "verified: not-ready endpoints are pods too"}, podsOn),
		with(Case{Name: "fd00-10-244--1-1.default.pod.cluster.local.", Type: dns.TypeAAAA,
			Answer: []string{aaaa("fd00-10-244--1-1.default.pod.cluster.local.", "fd00:10:244::1:1")}}, podsOn),
		with(nodata("10-244-1-1.default.pod.cluster.local.", dns.TypeAAAA, ""), podsOn),
		with(nodata("default.pod.cluster.local.", dns.TypeA, "a namespace below pod"), podsOn),
		with(nodata("pod.cluster.local.", dns.TypeA, ""), podsOn),
		with(Case{Name: "10-244-1-1.Other.POD.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-244-1-1.Other.POD.cluster.local.", "10.244.1.1")}}, insecure),
		with(Case{Name: "fd00-0-0-0-0-0-0-1.default.pod.cluster.local.", Type: dns.TypeAAAA,
			Answer: []string{aaaa("fd00-0-0-0-0-0-0-1.default.pod.cluster.local.", "fd00::1")}}, insecure),
		with(Case{Name: "10-1-2-3.default.pod.cluster.local.", Type: dns.TypeANY,
			Answer: []string{a("10-1-2-3.default.pod.cluster.local.", "10.1.2.3")}}, insecure),
		with(nx("10-1-2-3.default.pod.cluster.local.", dns.TypeA, "not an endpoint"), notSecure),
		with(nx("10-244-1-1.other.pod.cluster.local.", dns.TypeA, "an endpoint of another namespace"), notSecure),
		with(nx("default.pod.cluster.local.", dns.TypeA, ""), disabled),
		with(nx("pod.cluster.local.", dns.TypeA, ""), disabled),
		with(nx("10-244-1-1.default.pod.cluster.local.", dns.TypeA, ""), disabled),
		nx("10-1-2.default.pod.cluster.local.", dns.TypeA, "not an address"),
		nx("10-1-2-256.default.pod.cluster.local.", dns.TypeA, ""),
		nx("web-0.default.pod.cluster.local.", dns.TypeA, ""),
		nx("x.10-244-1-1.default.pod.cluster.local.", dns.TypeA, ""),

		// Issue 10, items 4 and 5: pod names follow the namespaces and, in
		// verified mode, the pods that exist (FixtureNamespaces,
		// FixturePods), as CoreDNS's do.
		nx("10-1-2-3.nons.pod.cluster.local.", dns.TypeA, "a namespace that does not exist, in every mode"),
		nx("nons.pod.cluster.local.", dns.TypeA, ""),
		with(Case{Name: "10-1-2-3.quiet.pod.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-1-2-3.quiet.pod.cluster.local.", "10.1.2.3")}, Note: "a namespace without services or pods exists"}, insecure),
		with(nx("10-1-2-3.quiet.pod.cluster.local.", dns.TypeA, "no pod has the address"), notSecure),
		with(nodata("quiet.pod.cluster.local.", dns.TypeA, ""), insecure),
		with(nx("quiet.pod.cluster.local.", dns.TypeA, "verified: a namespace without pods"), notSecure),
		with(Case{Name: "10-244-5-5.other.pod.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-244-5-5.other.pod.cluster.local.", "10.244.5.5")}, Note: "verified: a pod behind no service"}, podsOn),
		with(nx("10-244-5-5.other.pod.cluster.local.", dns.TypeA, ""), disabled),
		with(nodata("other.pod.cluster.local.", dns.TypeA, "verified: a namespace with a pod behind no service"), podsOn),
		with(nx("other.pod.cluster.local.", dns.TypeA, ""), disabled),
		with(Case{Name: "10-244-3-1.kube-system.pod.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-244-3-1.kube-system.pod.cluster.local.", "10.244.3.1")}}, insecure),
		with(nx("10-244-3-1.kube-system.pod.cluster.local.", dns.TypeA, "verified: an endpoint address with no pod"), notSecure),
		with(nodata("kube-system.pod.cluster.local.", dns.TypeA, ""), insecure),
		with(nx("kube-system.pod.cluster.local.", dns.TypeA, "verified: endpoints but no pods"), notSecure),
		with(nx("10-244-9-9.default.pod.cluster.local.", dns.TypeA, "verified: the address of a pod that has terminated"), notSecure),
		with(Case{Name: "10-244-9-9.default.pod.cluster.local.", Type: dns.TypeA,
			Answer: []string{a("10-244-9-9.default.pod.cluster.local.", "10.244.9.9")}}, insecure),

		// Not ours: reverse names that are no cluster records fall through
		// to Forward; other names outside the zone are forwarded.
		refused("3.1.244.10.in-addr.arpa.", dns.TypePTR, noFwd, "not ready"),
		refused("1.0.96.10.in-addr.arpa.", dns.TypeA, noFwd, "only PTR is served in reverse zones"),
		refused("96.10.in-addr.arpa.", dns.TypePTR, noFwd, ""),
		refused("in-addr.arpa.", dns.TypeSOA, noFwd, ""),
		refused("example.com.", dns.TypeA, noFwd, ""),
		refused("local.", dns.TypeA, noFwd, ""),
		refused("xcluster.local.", dns.TypeA, noFwd, ""),
		refused(".", dns.TypeNS, noFwd, ""),
		refused(Zone, dns.TypeAXFR, Requires{}, "no zone transfers"),

		// Issue 10 (branch dns-spec).
		// A ready endpoint without hostname has a PTR to the name it is
		// answered at (spec 1.1.0 section 2.4.3; its hostname is the
		// system-assigned one of section 2.1).
		{Name: "2.1.244.10.in-addr.arpa.", Type: dns.TypePTR, Answer: []string{ptr("2.1.244.10.in-addr.arpa.", ep2)},
			Note: "endpoint without hostname: its dashed name"},
		{Name: rev6, Type: dns.TypePTR, Answer: []string{ptr(rev6, ep6)}},
		{Name: rev61, Type: dns.TypePTR, Answer: []string{ptr(rev61, ep61)}},
		refused("1.4.244.10.in-addr.arpa.", dns.TypePTR, noFwd, "not ready: no PTR"),
		// IPv6 endpoint labels are valid host names (RFC 1123 section 2.1)
		// and CoreDNS's: an address ending in "::" gets a final 0.
		{Name: hl6, Type: dns.TypeAAAA, Answer: []string{aaaa(hl6, "fd00:10:244:6::"), aaaa(hl6, "fd00:10:244::6:1")}},
		{Name: ep6, Type: dns.TypeAAAA, Answer: []string{aaaa(ep6, "fd00:10:244:6::")}, Note: "not fd00-10-244-6--, whose last character is a hyphen"},
		{Name: ep61, Type: dns.TypeAAAA, Answer: []string{aaaa(ep61, "fd00:10:244::6:1")}},
		nx("fd00-10-244-6--.hl6.default.svc.cluster.local.", dns.TypeAAAA, "no label ends in a hyphen"),
		{Name: "_http._tcp." + hl6, Type: dns.TypeSRV,
			Answer:     []string{srv("_http._tcp."+hl6, 50, 8080, ep6), srv("_http._tcp."+hl6, 50, 8080, ep61)},
			Additional: []string{aaaa(ep6, "fd00:10:244:6::"), aaaa(ep61, "fd00:10:244::6:1")}},
		// A headless service without ready endpoints has no records: its
		// name and the names below it do not exist (spec 1.1.0 section
		// 2.4.1); its namespace does.
		nx("empty.default.svc.cluster.local.", dns.TypeA, "headless without endpoints"),
		nx(idle, dns.TypeA, "headless with a not-ready endpoint only"),
		nx(idle, dns.TypeAAAA, ""),
		nx("_http._tcp."+idle, dns.TypeSRV, ""),
		nx("_tcp."+idle, dns.TypeSRV, ""),
		nx("10-244-4-1."+idle, dns.TypeA, ""),
		nodata("standby.svc.cluster.local.", dns.TypeA, "a namespace whose one service has no endpoints"),
		// A namespace without services has no name under svc (RFC 8020:
		// nothing exists at or below it); CoreDNS answers NODATA.
		nx("quiet.svc.cluster.local.", dns.TypeA, "a namespace without services"),
		// UDP answers are at most MaxUDPSize octets, whatever the EDNS
		// payload size the client advertises (DNS flag day 2020): beyond,
		// TC sends the client to TCP.
		{Name: "_http._tcp." + wide, Type: dns.TypeSRV, EDNS: 4096, Truncated: true, Answer: wideSRV,
			Requires: Requires{Transport: UDP}, Note: "4096 octets would hold the whole answer"},
		{Name: "_http._tcp." + wide, Type: dns.TypeSRV, EDNS: 4096, Answer: wideSRV, Additional: wideA,
			Requires: Requires{Transport: TCP}},
		{Name: big, Type: dns.TypeA, EDNS: 4096, Truncated: true, Answer: bigA, Requires: Requires{Transport: UDP}},
		{Name: big, Type: dns.TypeA, EDNS: 4096, Answer: bigA, Requires: Requires{Transport: TCP}},
		{Name: "_http._tcp." + hl, Type: dns.TypeSRV, EDNS: 4096,
			Answer:     []string{srv("_http._tcp."+hl, 50, 8080, ep2), srv("_http._tcp."+hl, 50, 8080, web0)},
			Additional: []string{a(ep2, "10.244.1.2"), a(web0, "10.244.1.1"), aaaa(web0, "fd00:10:244::1:1")},
			Note:       "an answer that fits comes whole"},
		{Name: web, Type: dns.TypeA, EDNS: 512, Answer: []string{a(web, "10.96.0.110")}},
	}
}

// Names and records of the issue 10 cases.
var (
	rev6    = reverse("fd00:10:244:6::")
	rev61   = reverse("fd00:10:244::6:1")
	bigA    = endpointRecords(BigEndpoints, func(i int) string { return a(big, "10.244.3."+itoa(i)) })
	wideSRV = endpointRecords(WideEndpoints, func(i int) string {
		return srv("_http._tcp."+wide, 100/WideEndpoints, 8080, "10-244-7-"+itoa(i)+"."+wide)
	})
	wideA = endpointRecords(WideEndpoints, func(i int) string { return a("10-244-7-"+itoa(i)+"."+wide, "10.244.7."+itoa(i)) })
)

const (
	hl6  = "hl6.default.svc.cluster.local."
	ep6  = "fd00-10-244-6--0.hl6.default.svc.cluster.local."
	ep61 = "fd00-10-244--6-1.hl6.default.svc.cluster.local."
	idle = "idle.standby.svc.cluster.local."
	big  = "big.kube-system.svc.cluster.local."
	wide = "wide.kube-system.svc.cluster.local."
)

func reverse(addr string) string {
	name, err := dns.ReverseAddr(addr)
	if err != nil {
		panic(err)
	}
	return name
}

// endpointRecords returns rec(i) for i from 1 to n: a record per endpoint,
// by the last octet of its address.
func endpointRecords(n int, rec func(i int) string) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = rec(i + 1)
	}
	return out
}
