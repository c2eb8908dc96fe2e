package dnsconfig

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/kdnsd/kdnsd/fsm"
)

const src = "kube-system/kdnsd@42"

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want *fsm.DNSConfig
	}{
		{"empty: the flags", nil, &fsm.DNSConfig{Source: src}},
		{"every key", map[string]string{
			"upstreams":   "10.0.0.53, 10.0.0.54:5353\n[fd00::53]:53",
			"stubDomains": "# corp\nzz.example 10.2.0.53\nCorp.Example. 10.1.0.53 10.1.0.54:5353 # two\n",
			"records": `db.corp.example.   A  10.1.2.3  ; the database
db.corp.example 60 IN AAAA fd00::3
www.corp.example.  CNAME db.corp.example.
_ldap._tcp.corp.example. SRV 0 10 389 db.corp.example.
corp.example.  TXT "v=spf1 -all"
3.2.1.10.in-addr.arpa. PTR db.corp.example.
registry.cluster.local. A 10.1.2.4
x.web.default.svc.cluster.local. A 10.1.2.5`,
			"ttl": "5", "podMode": "verified", "negativeTTL": " 60 ", "cacheSize": "-1",
		}, &fsm.DNSConfig{
			Source:    src,
			Upstreams: []string{"10.0.0.53", "10.0.0.54:5353", "[fd00::53]:53"},
			StubDomains: []fsm.StubDomain{
				{Domain: "corp.example.", Servers: []string{"10.1.0.53", "10.1.0.54:5353"}},
				{Domain: "zz.example.", Servers: []string{"10.2.0.53"}},
			},
			Records: []fsm.Record{
				{Name: "db.corp.example.", Type: "A", Data: "10.1.2.3"},
				{Name: "db.corp.example.", Type: "AAAA", TTL: 60, Data: "fd00::3"},
				{Name: "www.corp.example.", Type: "CNAME", Data: "db.corp.example."},
				{Name: "_ldap._tcp.corp.example.", Type: "SRV", Data: "0 10 389 db.corp.example."},
				{Name: "corp.example.", Type: "TXT", Data: `"v=spf1 -all"`},
				{Name: "3.2.1.10.in-addr.arpa.", Type: "PTR", Data: "db.corp.example."},
				{Name: "registry.cluster.local.", Type: "A", Data: "10.1.2.4"},
				{Name: "x.web.default.svc.cluster.local.", Type: "A", Data: "10.1.2.5"},
			},
			TTL: 5, PodMode: "verified", NegativeTTL: 60, CacheSize: -1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.data, "cluster.local", src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestParseRefuses: every mistake refuses the whole ConfigMap, and the
// error names each one with its key and line.
func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want []string // substrings of the error, in order
	}{
		{"unknown key", map[string]string{"upstream": "10.0.0.1"}, []string{`key "upstream": unknown key; the keys are upstreams,`}},
		{"bad upstream", map[string]string{"upstreams": "10.0.0.1 dns.example"}, []string{`key "upstreams": server "dns.example": want an IP address`}},
		{"no upstream", map[string]string{"upstreams": " , "}, []string{`key "upstreams": no server`}},
		{"ttl not a number", map[string]string{"ttl": "30s"}, []string{`key "ttl": "30s": want seconds`}},
		{"ttl zero", map[string]string{"ttl": "0"}, []string{`key "ttl": "0": want seconds`}},
		{"negative ttl too big", map[string]string{"negativeTTL": "4294967295"}, []string{`key "negativeTTL"`}},
		{"pod mode", map[string]string{"podMode": "secure"}, []string{`key "podMode": "secure": want insecure, verified, disabled`}},
		{"cache size zero", map[string]string{"cacheSize": "0"}, []string{`key "cacheSize": 0: leave the key out`}},
		{"cache size text", map[string]string{"cacheSize": "big"}, []string{`key "cacheSize": "big" is not a whole number`}},
		{"stub domain without server", map[string]string{"stubDomains": "corp.example"}, []string{`key "stubDomains" line 1: "corp.example": want a domain and its servers`}},
		{"stub domain in the zone", map[string]string{"stubDomains": "x.cluster.local 10.0.0.1"}, []string{`line 1: x.cluster.local. is in the cluster zone`}},
		{"stub domain twice", map[string]string{"stubDomains": "a.example 10.0.0.1\nA.example. 10.0.0.2"}, []string{`line 2: a.example. is given twice`}},
		{"record type", map[string]string{"records": "a.example. MX 10 b.example."}, []string{`key "records" line 1: type MX: want A, AAAA`}},
		{"record data", map[string]string{"records": "\na.example. A 10.0.0.300"}, []string{`key "records" line 2: "a.example. A 10.0.0.300"`}},
		{"record directive", map[string]string{"records": "$ORIGIN example."}, []string{`directives are not allowed`}},
		{"record class", map[string]string{"records": "a.example. CH A 10.0.0.1"}, []string{`class CH: want IN`}},
		{"record twice", map[string]string{"records": "a.example. A 10.0.0.1\nA.example A 10.0.0.1"}, []string{`line 2: the same record as line 1`}},
		{"cname and more", map[string]string{"records": "a.example. A 10.0.0.1\na.example. CNAME b.example."}, []string{`line 2: a.example. has a CNAME and other records`}},
		{"wildcard", map[string]string{"records": "*.corp.example. A 10.0.0.1"}, []string{`label "*": want 1 to 63 letters`}},
		{"apex", map[string]string{"records": "cluster.local. TXT hi"}, []string{`cluster.local.: the cluster zone's apex is kdnsd's`}},
		{"pod name", map[string]string{"records": "1-2-3-4.default.pod.cluster.local. A 1.2.3.4"}, []string{`pod names are kdnsd's`}},
		{"namespace name", map[string]string{"records": "default.svc.cluster.local. A 1.2.3.4"}, []string{`svc and namespace names are kdnsd's`}},
		{"dns-version", map[string]string{"records": "dns-version.cluster.local. TXT x"}, []string{`kdnsd answers this name itself`}},
		{"every mistake at once", map[string]string{"ttl": "x", "records": "a.example. MX 1 b.", "podMode": "y"},
			[]string{src + `: key "podMode"`, `key "records" line 1`, `key "ttl"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(tt.data, "cluster.local.", src)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			msg, at := err.Error(), 0
			for _, w := range tt.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (after offset %d)", msg, w, at)
				}
				at += i + len(w)
			}
		})
	}
}

func TestCheckServices(t *testing.T) {
	view := fsm.NewView(1, []*fsm.Service{{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP,
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.5")}}}, nil)
	tests := []struct {
		name, record string
		want         string // "" for accepted
	}{
		{"the service's name", "web.default.svc.cluster.local. A 10.0.0.1", `web.default.svc.cluster.local. A collides with Service default/web`},
		{"under the service", "x.web.default.svc.cluster.local. A 10.0.0.1", `collides with Service default/web`},
		{"another service", "db.default.svc.cluster.local. A 10.0.0.1", ""},
		{"outside the zone", "web.default.svc.other. A 10.0.0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(map[string]string{"records": tt.record}, "cluster.local.", src)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckServices(cfg, "cluster.local", view)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestInForce(t *testing.T) {
	flags := &fsm.DNSConfig{Upstreams: []string{"10.0.0.1"}, TTL: 30, PodMode: "insecure", CacheSize: 10000}
	cm := &fsm.DNSConfig{Source: src, TTL: 5, StubDomains: []fsm.StubDomain{{Domain: "corp.example.", Servers: []string{"10.1.0.53"}}},
		Records: []fsm.Record{{Name: "a.example.", Type: "A", Data: "10.0.0.9"}}, NegativeTTL: 60}
	got, settings := InForce(flags, &fsm.ConfigState{Config: cm, Index: 9})
	want := &fsm.DNSConfig{Source: src, Upstreams: flags.Upstreams, StubDomains: cm.StubDomains, Records: cm.Records,
		TTL: 5, PodMode: "insecure", NegativeTTL: 60, CacheSize: 10000}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("in force %+v, want %+v", got, want)
	}
	wantSettings := []Setting{
		{KeyUpstreams, "10.0.0.1", "flag"}, {KeyStubDomains, "corp.example. 10.1.0.53", src}, {KeyRecords, "1", src},
		{KeyTTL, "5", src}, {KeyPodMode, "insecure", "flag"}, {KeyNegativeTTL, "60", src}, {KeyCacheSize, "10000", "flag"},
	}
	if !reflect.DeepEqual(settings, wantSettings) {
		t.Fatalf("settings %+v, want %+v", settings, wantSettings)
	}
	got, settings = InForce(&fsm.DNSConfig{TTL: 30, PodMode: "verified"}, &fsm.ConfigState{Index: 12})
	if got.Source != "flags" || got.TTL != 30 || settings[0].Value != "(the nameservers of --resolv-conf)" || settings[5].Value != "(forwarder default)" {
		t.Fatalf("flags alone: %+v %+v", got, settings)
	}
	if flags.Source != "" || flags.TTL != 30 {
		t.Fatal("InForce changed the flags")
	}
}
