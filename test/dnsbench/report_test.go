package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleReport has a replicated server fed by the API, CoreDNS with cache
// (a reference fed by the API) and NSD (a reference from a zone file).
func sampleReport() *report {
	return &report{config: config{services: 1000, headless: 50, seconds: 8, rounds: 2, rate: 20000, trials: 2}, results: []*result{
		{server: &server{name: "kdnsd"}, fed: true, startup: 2 * time.Second, watches: 3,
			propagation: []time.Duration{4 * time.Millisecond, 6 * time.Millisecond},
			load:        load{qps: []float64{90000, 110000}, latency: []float64{0.001, 0.001}, cpuPerQuery: []time.Duration{20 * time.Microsecond}, fixedQPS: []float64{20000}},
			rssKB:       []int{40 * 1024, 60 * 1024, 50 * 1024}},
		{server: &server{name: "CoreDNS + cache"}, fed: true, reference: true, startup: time.Second, watches: 3,
			load:  load{qps: []float64{40000, 40000}, latency: []float64{0.002, 0.002}, cpuPerQuery: []time.Duration{40 * time.Microsecond}, fixedQPS: []float64{20000}},
			rssKB: []int{120 * 1024}},
		{server: &server{name: "NSD"}, reference: true,
			load:  load{qps: []float64{100000, 100000}, latency: []float64{0.001, 0.001}, cpuPerQuery: []time.Duration{10 * time.Microsecond}, fixedQPS: []float64{20000}},
			rssKB: []int{30 * 1024}},
	}, resync: resync{elected: time.Second, streamed: 3 * time.Second, entries: 2, appliedBefore: 1200, appliedAfter: 1200}}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	sampleReport().writeMarkdown(&b)
	out := b.String()
	for _, want := range []string{
		// QPS is the mean of the rounds; RSS the largest replica, each listed.
		"| kdnsd | 100000 | 1.00 ms | 20.0 µs | 20000 | 60.0 MiB (40.0 / 60.0 / 50.0) |",
		"| QPS ÷ CoreDNS + cache | QPS ÷ NSD | CPU/query ÷ CoreDNS + cache | CPU/query ÷ NSD | RSS ÷ CoreDNS + cache | RSS ÷ NSD |",
		"| kdnsd | 2.50 | 1.00 | 0.50 | 2.00 | 0.50 | 2.00 |",
		// Propagation and watches only for the servers fed by the API.
		"| kdnsd | 2000.0 ms | 3 | 4.0 ms | 6.0 ms | 6.0 ms |",
		"| CoreDNS + cache | 1000.0 ms | 3 | – | – | – |",
		// The new leader's resync.
		"a new leader 1000.0 ms later",
		"done 3000.0 ms after the kill; 2 log entries appended meanwhile",
		"at index 1200 before, 1200 after",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "| NSD |") != 2 {
		t.Errorf("NSD should be in the load and ratio tables only:\n%s", out)
	}
}

func TestWriteChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.png")
	if err := sampleReport().writeChart(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a PNG", path)
	}
}
