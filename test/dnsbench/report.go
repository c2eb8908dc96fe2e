package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/kdnsd/kdnsd/test/cluster"
)

// result is everything measured of one server.
type result struct {
	server *server
	addrs  []string // every replica's DNS address
	// fed: the server is fed by the API server; startup, watches and
	// propagation are measured only for those.
	fed bool
	// reference: the others are given as ratios of this one (CoreDNS with
	// cache, NSD, the map server).
	reference   bool
	startup     time.Duration
	watches     int // WATCH requests it holds against the API server
	propagation []time.Duration
	load        load
	rssKB       []int // after the load runs: the measured process first, then the other replicas
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(max(len(xs), 1))
}

func (r *result) qps() float64 { return mean(r.load.qps) }

// cpuMicros is the mean CPU time per answered query at the fixed rate, µs.
func (r *result) cpuMicros() float64 {
	var us []float64
	for _, d := range r.load.cpuPerQuery {
		us = append(us, float64(d)/float64(time.Microsecond))
	}
	return mean(us)
}

// rssMB is the largest RSS among the server's processes, MiB.
func (r *result) rssMB() float64 { return float64(slices.Max(r.rssKB)) / 1024 }

type report struct {
	config  config
	results []*result
	resync  resync
}

func (rep *report) references() []*result {
	var refs []*result
	for _, r := range rep.results {
		if r.reference {
			refs = append(refs, r)
		}
	}
	return refs
}

func (rep *report) writeMarkdown(w io.Writer) {
	c := rep.config
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("`go run ./test/dnsbench %s` on %s, %d CPUs:\n", strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU())
	p("%d ClusterIP services with 3 ready endpoints each + %d headless services with 3 named endpoints, created through\n", c.services, c.headless)
	p("a real kube-apiserver; kdnsd and CoreDNS fed by it, NSD and the map server from a zone file of the same records.\n")
	p("Query mix: 60%% ClusterIP A, 20%% headless A, 10%% SRV, 5%% AAAA (no data), 5%% NXDOMAIN. Each server pinned to\n")
	p("core %s, dnsperf (`-c 8 -T 1 -q 500 -l %d`) to core %s; %d alternating rounds, mean. CPU per query: the server's\n", serverCore, c.seconds, dnsperfCore, c.rounds)
	p("utime+stime (its process tree, /proc) during a run at `-Q %d`, divided by the queries answered. RSS after the\n", c.rate)
	p("load runs (for kdnsd the largest replica; dnsperf asks replica kdnsd-0).\n\n")

	p("| server | QPS | avg latency | CPU per query at %d qps | answered/s at %d qps | RSS |\n|---|---|---|---|---|---|\n", c.rate, c.rate)
	for _, r := range rep.results {
		rss := fmt.Sprintf("%.1f MiB", r.rssMB())
		if len(r.rssKB) > 1 {
			var each []string
			for _, kb := range r.rssKB {
				each = append(each, fmt.Sprintf("%.1f", float64(kb)/1024))
			}
			rss += " (" + strings.Join(each, " / ") + ")"
		}
		p("| %s | %.0f | %.2f ms | %.1f µs | %.0f | %s |\n", r.server.name, r.qps(), mean(r.load.latency)*1000, r.cpuMicros(), mean(r.load.fixedQPS), rss)
	}

	refs := rep.references()
	p("\nRatios (QPS: higher is better; CPU per query and RSS: lower is better):\n\n| server |")
	for _, figure := range []string{"QPS", "CPU/query", "RSS"} {
		for _, ref := range refs {
			p(" %s ÷ %s |", figure, ref.server.name)
		}
	}
	p("\n|---|%s\n", strings.Repeat("---|", 3*len(refs)))
	for _, r := range rep.results {
		p("| %s |", r.server.name)
		for _, value := range []func(*result) float64{(*result).qps, (*result).cpuMicros, (*result).rssMB} {
			for _, ref := range refs {
				p(" %.2f |", value(r)/value(ref))
			}
		}
		p("\n")
	}

	p("\nFed by the API server. Watches: the change in the API server's own\n")
	p("`apiserver_longrunning_requests{verb=\"WATCH\"}` when the server started. Propagation: %d trials, each a headless Service and\n", c.trials)
	p("its EndpointSlice created through the API; from the API's acknowledgement of the slice to the answer, on the slowest\n")
	p("replica (asked every 0.2 ms). CoreDNS's propagation is measured without cache (with it, a name asked too early\n")
	p("stays NXDOMAIN for the denial TTL).\n\n")
	p("| server | start → whole set answered | watches | propagation median | p99 | max |\n|---|---|---|---|---|---|\n")
	for _, r := range rep.results {
		if !r.fed {
			continue
		}
		prop := "| – | – | –"
		if len(r.propagation) > 0 {
			prop = fmt.Sprintf("| %s | %s | %s", ms(cluster.Percentile(r.propagation, 50)), ms(cluster.Percentile(r.propagation, 99)), ms(slices.Max(r.propagation)))
		}
		p("| %s | %s | %d %s |\n", r.server.name, ms(r.startup), r.watches, prop)
	}
	if rs := rep.resync; rs.streamed > 0 {
		p("\nkdnsd's leader killed (SIGKILL) after the runs: a new leader %s later; its resync (list the API, diff with\n", ms(rs.elected))
		p("the records) done %s after the kill; %d log entries appended meanwhile; the records' last applied command\n", ms(rs.streamed), rs.entries)
		p("at index %d before, %d after (equal: the resync committed no change; the entries are Raft's no-op and barriers).\n", rs.appliedBefore, rs.appliedAfter)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// writeChart draws QPS, CPU per query, RSS and propagation as horizontal
// bar charts, one panel each, into a PNG at path.
func (rep *report) writeChart(path string) error {
	var names []string
	for _, r := range rep.results {
		names = append(names, r.server.name)
	}
	panel := func(title, unit string, value func(*result) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text, p.X.Label.Text = title, unit
		var vs plotter.Values
		for _, r := range rep.results {
			vs = append(vs, value(r))
		}
		bars, err := plotter.NewBarChart(vs, vg.Points(14))
		if err != nil {
			return nil, err
		}
		bars.Horizontal, bars.Color = true, plotutil.Color(0)
		p.Add(bars)
		p.NominalY(names...)
		return p, nil
	}
	c := rep.config
	qps, err := panel("QPS, server on one core", "queries/s", (*result).qps)
	if err != nil {
		return err
	}
	cpu, err := panel(fmt.Sprintf("CPU per answered query at %d qps", c.rate), "µs", (*result).cpuMicros)
	if err != nil {
		return err
	}
	rss, err := panel("RSS after the load runs (largest replica)", "MiB", (*result).rssMB)
	if err != nil {
		return err
	}
	prop, err := rep.propagationPanel()
	if err != nil {
		return err
	}
	const w, h = 13 * vg.Inch, 7 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	plots := [][]*plot.Plot{{qps, cpu}, {rss, prop}}
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Points(12), PadY: vg.Points(12), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(16)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// propagationPanel shows the median and p99 propagation of the servers it
// was measured for, side by side.
func (rep *report) propagationPanel() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text = fmt.Sprintf("API write acknowledged → answered (%d trials)", rep.config.trials), "ms"
	var names []string
	var median, p99 plotter.Values
	for _, r := range rep.results {
		if len(r.propagation) == 0 {
			continue
		}
		names = append(names, r.server.name)
		median = append(median, float64(cluster.Percentile(r.propagation, 50))/float64(time.Millisecond))
		p99 = append(p99, float64(cluster.Percentile(r.propagation, 99))/float64(time.Millisecond))
	}
	width := vg.Points(12)
	for i, series := range []struct {
		label string
		vs    plotter.Values
	}{{"median", median}, {"p99", p99}} {
		bars, err := plotter.NewBarChart(series.vs, width)
		if err != nil {
			return nil, err
		}
		bars.Horizontal, bars.Color = true, plotutil.Color(i)
		bars.Offset = vg.Length(i*2-1) * width / 2
		p.Add(bars)
		p.Legend.Add(series.label, bars)
	}
	p.Legend.Top = true
	p.NominalY(names...)
	return p, nil
}
