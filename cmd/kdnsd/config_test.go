package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
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

// TestStatusPage: GET / on the admin address is an HTML page, without
// script, with what status, peers list and config show print; a value from
// the API is escaped; without credentials it is refused like the API.
func TestStatusPage(t *testing.T) {
	g := newAdminTestGroup(t)
	g.fc.SetView((&fsm.Records{Config: &fsm.ConfigState{
		Config: &fsm.DNSConfig{Source: "kube-system/kdnsd@77", TTL: 5,
			Records: []fsm.Record{{Name: "db.corp.example.", Type: "TXT", TTL: 60, Data: `"<script>alert(1)</script>"`}}},
		Index:    40,
		Rejected: &fsm.ConfigRejection{Source: "kube-system/kdnsd@80", Error: `key "ttl": "<b>": want seconds`},
	}}).View(42))
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(g.ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(g.cert, g.key)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	get := func(token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+g.addrs["b"]+"/", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, page := get(cliTestToken)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /: %s %v", resp.Status, resp.Header)
	}
	for _, want := range []string{
		"<h1>kdnsd b</h1>", "leader a (10.0.0.1:7000)",
		"<tr><th>applied index</th><td>42</td></tr>", "<tr><th>watcher</th><td>watching</td></tr>",
		"<tr><td>a</td><td>10.0.0.1:7000</td><td>yes</td><td>yes</td>", "<td>c</td><td>10.0.0.3:7000</td><td>no</td>",
		"In force: kube-system/kdnsd@77, committed at raft index 40.",
		"<tr><td>ttl</td><td>5</td><td>kube-system/kdnsd@77</td></tr>", "<tr><td>podMode</td><td>insecure</td><td>flag</td></tr>",
		`db.corp.example. 60 IN TXT &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;`,
		"Refused: kube-system/kdnsd@80", `key &#34;ttl&#34;: &#34;&lt;b&gt;&#34;: want seconds`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script") {
		t.Errorf("page holds a script:\n%s", page)
	}
	if resp, _ := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET / without token: %s", resp.Status)
	}
}
