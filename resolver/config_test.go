package resolver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
)

// configView is a View with one Service and, unless cfg is nil, the DNS
// configuration cfg committed at index.
func configView(index uint64, cfg *fsm.DNSConfig) *fsm.View {
	rec := fsm.Records{Services: []*fsm.Service{{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP,
		ClusterIPs: addrs("10.96.0.5")}}}
	if cfg != nil {
		rec.Config = &fsm.ConfigState{Config: cfg, Index: index}
	}
	return rec.View(index)
}

var customConfig = &fsm.DNSConfig{
	Source: "kube-system/kdnsd@1", TTL: 7, PodMode: PodDisabled,
	Records: []fsm.Record{
		{Name: "db.corp.example.", Type: "A", TTL: 60, Data: "10.1.2.3"},
		{Name: "db.corp.example.", Type: "A", TTL: 60, Data: "10.1.2.4"},
		{Name: "db.corp.example.", Type: "AAAA", Data: "fd00::3"},
		{Name: "www.corp.example.", Type: "CNAME", Data: "DB.corp.example."},
		{Name: "corp.example.", Type: "TXT", Data: `"v=spf1 -all" "two"`},
		{Name: "_ldap._tcp.corp.example.", Type: "SRV", Data: "0 10 389 db.corp.example."},
		{Name: "4.2.1.10.in-addr.arpa.", Type: "PTR", Data: "db.corp.example."},
		{Name: "registry.tools.cluster.local.", Type: "A", Data: "10.1.2.5"},
		{Name: "web.default.svc.cluster.local.", Type: "A", Data: "10.1.2.6"},
	},
}

// TestConfigInIndex: the View's configuration sets the TTL and pod mode of
// the index built from it, and its custom records are answered from the
// index, in and outside the cluster zone; a Service keeps its name. A View
// without configuration is answered with Config's values again.
func TestConfigInIndex(t *testing.T) {
	r := newTestResolver(t, configView(3, customConfig))
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		aa    bool
		want  []string // answer records
		ns    int      // authority records
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"web.default.svc.cluster.local. 7 IN A 10.96.0.5"}, 0},
		{"DB.corp.example.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"DB.corp.example. 60 IN A 10.1.2.3", "DB.corp.example. 60 IN A 10.1.2.4"}, 0},
		{"db.corp.example.", dns.TypeAAAA, dns.RcodeSuccess, true, []string{"db.corp.example. 7 IN AAAA fd00::3"}, 0},
		{"db.corp.example.", dns.TypeANY, dns.RcodeSuccess, true,
			[]string{"db.corp.example. 60 IN A 10.1.2.3", "db.corp.example. 60 IN A 10.1.2.4"}, 0},
		{"db.corp.example.", dns.TypeMX, dns.RcodeSuccess, true, nil, 0},
		{"www.corp.example.", dns.TypeA, dns.RcodeSuccess, true, []string{"db.corp.example. 60 IN A 10.1.2.3",
			"db.corp.example. 60 IN A 10.1.2.4", "www.corp.example. 7 IN CNAME db.corp.example."}, 0}, // chased in the index
		{"www.corp.example.", dns.TypeCNAME, dns.RcodeSuccess, true, []string{"www.corp.example. 7 IN CNAME db.corp.example."}, 0},
		{"corp.example.", dns.TypeTXT, dns.RcodeSuccess, true, []string{`corp.example. 7 IN TXT "v=spf1 -all" "two"`}, 0},
		{"_ldap._tcp.corp.example.", dns.TypeSRV, dns.RcodeSuccess, true,
			[]string{"_ldap._tcp.corp.example. 7 IN SRV 0 10 389 db.corp.example."}, 0},
		{"4.2.1.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, true, []string{"4.2.1.10.in-addr.arpa. 7 IN PTR db.corp.example."}, 0},
		{"registry.tools.cluster.local.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"registry.tools.cluster.local. 7 IN A 10.1.2.5"}, 0},
		{"tools.cluster.local.", dns.TypeA, dns.RcodeSuccess, true, nil, 1}, // an empty non-terminal
		{"1-2-3-4.default.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, true, nil, 1},
		{"other.corp.example.", dns.TypeA, dns.RcodeRefused, false, nil, 0}, // no Forward here
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			resp := exchange(t, r, new(dns.Msg).SetQuestion(tt.name, tt.qtype), false)
			if resp.Rcode != tt.rcode || resp.Authoritative != tt.aa || !slices.Equal(rrStrings(resp.Answer), tt.want) || len(resp.Ns) != tt.ns {
				t.Fatalf("got %s aa=%v %q ns=%d, want %s aa=%v %q ns=%d", dns.RcodeToString[resp.Rcode], resp.Authoritative,
					rrStrings(resp.Answer), len(resp.Ns), dns.RcodeToString[tt.rcode], tt.aa, tt.want, tt.ns)
			}
		})
	}
	if ix := r.idx.Load(); ix.shadowed != 1 {
		t.Errorf("%d custom records shadowed, want 1 (web.default.svc)", ix.shadowed)
	}

	// The flags again: TTL 30, pod names, no custom records.
	r.Update(configView(4, nil))
	for name, want := range map[string][]string{
		"web.default.svc.cluster.local.":     {"web.default.svc.cluster.local. 30 IN A 10.96.0.5"},
		"1-2-3-4.default.pod.cluster.local.": {"1-2-3-4.default.pod.cluster.local. 30 IN A 1.2.3.4"},
		"db.corp.example.":                   nil,
	} {
		if got := rrStrings(exchange(t, r, new(dns.Msg).SetQuestion(name, dns.TypeA), false).Answer); !slices.Equal(got, want) {
			t.Errorf("%s after the configuration went: %q, want %q", name, got, want)
		}
	}
}

// TestCustomRecordsReused: a View that changes services but not the
// configuration reuses the built custom records.
func TestCustomRecordsReused(t *testing.T) {
	r := newTestResolver(t, configView(3, customConfig))
	before := r.idx.Load().custom
	v := configView(4, customConfig)
	r.Update(v)
	if r.idx.Load().custom != before {
		t.Fatal("custom records rebuilt for an unchanged configuration")
	}
}

// BenchmarkFastPathCustom compares, on the fast path, a custom record
// outside the cluster zone, one inside it, and a Service's name of the same
// View.
func BenchmarkFastPathCustom(b *testing.B) {
	r := newTestResolver(b, configView(3, customConfig))
	out := make([]byte, 0, dnswire.EDNSPayload+dnswire.MinOut)
	for _, name := range []string{"db.corp.example.", "registry.tools.cluster.local.", "web.default.svc.cluster.local."} {
		b.Run(name, func(b *testing.B) {
			benchFastPath(b, r, out, new(dns.Msg).SetQuestion(name, dns.TypeA))
		})
	}
}
