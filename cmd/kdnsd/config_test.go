package main

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
)

// TestConfigShowAndStatus: `config show` prints each value in force with
// where it came from and the commit index, the custom records, and a
// refusal; `status` shows the configuration in force and the refusal.
func TestConfigShowAndStatus(t *testing.T) {
	g := newAdminTestGroup(t)
	const src = "kube-system/kdnsd@77"
	g.fc.SetView((&fsm.Records{Config: &fsm.ConfigState{
		Config: &fsm.DNSConfig{Source: src, TTL: 5, Upstreams: []string{"10.0.0.53"},
			Records: []fsm.Record{{Name: "db.corp.example.", Type: "A", TTL: 60, Data: "10.1.2.3"}}},
		Index:    40,
		Rejected: &fsm.ConfigRejection{Source: "kube-system/kdnsd@80", Error: "kube-system/kdnsd@80: key \"ttl\": \"x\": want seconds"},
	}}).View(42))

	out, _, err := runAdminCLI(t, append([]string{"config", "show"}, g.flagsFor("b")...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^replica b serves kube-system/kdnsd@77 \(raft index 40\)$`,
		`(?m)^upstreams +10\.0\.0\.53 +kube-system/kdnsd@77$`,
		`(?m)^ttl +5 +kube-system/kdnsd@77$`,
		`(?m)^podMode +insecure +flag$`,
		`(?m)^cacheSize +10000 +flag$`,
		`(?m)^negativeTTL +\(forwarder default\) +flag$`,
		`(?m)^  db\.corp\.example\. 60 IN A 10\.1\.2\.3$`,
		`(?m)^refused kube-system/kdnsd@80 \(the configuration above stays in force\):\n  .*want seconds$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("config show does not match %s:\n%s", re, out)
		}
	}
	out, _, err = runAdminCLI(t, append([]string{"config", "show", "-o", "json"}, g.flagsFor("a")...)...)
	if err != nil {
		t.Fatal(err)
	}
	var d admin.DNSConfigResponse
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Index != 40 || d.Source != src || len(d.Settings) != 7 {
		t.Fatalf("config show -o json: %v %+v", err, d)
	}

	out, _, err = runAdminCLI(t, append([]string{"status"}, g.flagsFor("c")...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^CONFIG +kube-system/kdnsd@77 \(raft index 40\)$`,
		`(?m)^CONFIG REFUSED +kube-system/kdnsd@80$`, `(?m)^ +kube-system/kdnsd@80: key "ttl": "x": want seconds$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status does not match %s:\n%s", re, out)
		}
	}
}
