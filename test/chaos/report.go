package chaos

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// ScenarioReport is one scenario's entry in the report.
type ScenarioReport struct {
	Result
	About    string   `json:"about"`
	Hold     string   `json:"hold"`
	Timeline string   `json:"timeline"` // the PNG's file name
	Events   []string `json:"events"`
}

// relative lists h's events as offsets from its start.
func relative(h *History) []string {
	evs := slices.Clone(h.Events)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.At.Compare(b.At) })
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s %s", offset(h, e.At), e.What))
	}
	return out
}

// WriteReport writes the markdown report to mdPath and chaos.json into
// assets, where Timeline put the PNGs.
func WriteReport(mdPath, assets string, run Run, b Bounds, reports []ScenarioReport) error {
	raw, err := json.MarshalIndent(struct {
		Profile   string            `json:"profile"`
		Bounds    map[string]string `json:"bounds"`
		Scenarios []ScenarioReport  `json:"scenarios"`
	}{run.Profile, map[string]string{"staleness": b.Staleness.String(), "failover": b.Failover.String(), "marker": b.Marker.String()}, reports}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(assets, "chaos.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(mdPath), assets)
	if err != nil {
		return err
	}
	return os.WriteFile(mdPath, []byte(markdown(run, filepath.ToSlash(rel), b, reports)), 0o644)
}

// Run says how the scenarios ran, for the report's head.
type Run struct {
	Profile string
	// Command is what wrote the report; Setting says, in sentences that
	// end where "a real kube-apiserver" follows, where the replicas ran.
	Command, Setting string
}

// localSetting is the Setting of make chaos and make chaos-short.
const localSetting = "The runs on 3 and on 5 voters are reported apart (CHAOS.md, CHAOS-5.md). Real kdnsd processes, each in its own\n" +
	"network namespace (Raft over mutual TLS between them),"

func markdown(run Run, assets string, b Bounds, reports []ScenarioReport) string {
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	voters := 0
	if len(reports) > 0 {
		voters = reports[0].Voters
	}
	p("# Chaos report\n\n")
	p("Written by `%s` (profile **%s**, %d voters) from the run of %s on %d CPUs.\n",
		run.Command, run.Profile, voters, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU())
	p("%s a real kube-apiserver, ~20 writes/s through it\n", run.Setting)
	p("(EndpointSlice + headless Service: create, address updates, delete), and %d probes/s to every replica over UDP\n", readRate)
	p("(applied index, then a name: live, deleted or never existing). The suite's code and the definitions are in\n")
	p("`test/chaos`; raw figures in `%s/chaos.json`.\n\n", assets)
	p("Properties: **availability** every query to a live replica (not killed, stopped or starting) answered NOERROR/NXDOMAIN\n")
	p("within %s, partitioned replicas included · **no phantom** no answer shows a state the API never held (or held only\n", queryTimeout)
	p("later) · **monotonic** no replica, across restarts (after a wipe of its data: from the wipe on), answers an older state or applied index to a query sent after a newer\n")
	p("one arrived · **bounded staleness** δ = how long before the answer the API last held what it shows (from the\n")
	p("acknowledgement of the write that replaced it, less any time the API server was down), on replicas connected to the\n")
	p("majority ≤ %s; replicas cut off, restarting or catching up are reported apart\n", b.Staleness)
	p("· **convergence** after the writes stop every replica answers every name as the API\n")
	p("holds it · **failover** a new leader within %s when the leader was hit, and the write made right after the fault\n", b.Failover)
	p("(in an API outage: from the API server's first accepted write, or, if later, from the end of the outage for the replicas: on the node, when the pods reach it through the kubernetes Service) answered by every live majority replica within %s.\n\n", b.Marker)

	p("| scenario |")
	for _, prop := range Properties {
		p(" %s |", prop)
	}
	p("\n|---|%s\n", strings.Repeat("---|", len(Properties)))
	for _, r := range reports {
		p("| %s |", r.Scenario)
		for _, v := range r.Verdicts {
			p(" %s |", passFail(v.Pass))
		}
		p("\n")
	}
	p("\n| scenario | probes | writes (failed) | lowest availability of a live replica, during · after | δ majority p50 / p99 / max | δ cut off or catching up p50 / p99 / max | lagged (cut off + catch-up) | convergence after writes stop | new leader after | fault → write answered by all live |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		f := r.Figures
		during, after := lowest(f.Availability)
		p("| %s | %d | %d (%d) | %s · %s | %s | %s | %s | %s | %s | %s |\n", r.Scenario, f.Queries, f.Writes, f.WritesFailed,
			during, after, f.StalenessMajority, f.StalenessLagging, perReplica(f.CaughtUp), maxOf(f.Convergence),
			failover(f.Failover), msOrNever(f.MarkerAllLive))
	}
	for _, r := range reports {
		p("\n## %s\n\n%s; fault held %s. %s\n\n", r.Scenario, r.About, r.Hold, passFail(r.Passed()))
		p("| property | verdict | detail |\n|---|---|---|\n")
		for _, v := range r.Verdicts {
			p("| %s | %s | %s |\n", v.Property, passFail(v.Pass), strings.ReplaceAll(v.Detail, "|", "\\|"))
		}
		p("\n| replica | before | during | after | convergence |\n|---|---|---|---|---|\n")
		ids := make([]string, 0, len(r.Figures.Availability))
		for id := range r.Figures.Availability {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			a := r.Figures.Availability[id]
			p("| %s | %s | %s | %s | %s |\n", id, a.Before, a.During, a.After, convergedIn(r.Figures, id))
		}
		if len(r.Figures.LeaderChanges) > 0 {
			p("\nLeaders:")
			for _, lc := range r.Figures.LeaderChanges {
				p(" %s (term %d) from %s;", lc.Replica, lc.Term, lc.At.UTC().Format("15:04:05.000"))
			}
			p("\n")
		}
		p("\nEvents: %s.\n", strings.Join(r.Events, "; "))
		if r.Timeline != "" {
			p("\n![%s](%s/%s)\n", r.Scenario, assets, r.Timeline)
		}
	}
	return sb.String()
}

// localCommand is the make target that writes a local run's report of
// profile on voters.
func localCommand(profile string, voters int) string {
	switch {
	case profile == "short":
		return "make chaos-short"
	case voters == 3:
		return "make chaos"
	}
	return fmt.Sprintf("make chaos CHAOS_VOTERS=%d", voters)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

// lowest returns the lowest during and after availability over replicas.
func lowest(av map[string]Phases) (string, string) {
	var during, after Ratio
	pick := func(cur *Ratio, r Ratio) {
		if r.Total == 0 {
			return
		}
		// The lowest ratio; of equal ones, the one over the most queries.
		a, b := float64(r.Answered)/float64(r.Total), float64(cur.Answered)/float64(cur.Total)
		if cur.Total == 0 || a < b || a == b && r.Total > cur.Total {
			*cur = r
		}
	}
	for _, p := range av {
		pick(&during, p.During)
		pick(&after, p.After)
	}
	return during.String(), after.String()
}

func perReplica(m map[string]float64) string {
	if len(m) == 0 {
		return "–"
	}
	var parts []string
	for id, v := range m {
		parts = append(parts, id+" "+ms(v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func maxOf(m map[string]float64) string {
	worst := 0.0
	for _, v := range m {
		if v < 0 {
			return "never"
		}
		worst = max(worst, v)
	}
	return ms(worst) + " (max)"
}

// convergedIn is a replica's convergence, or that it was taken out of the
// cluster.
func convergedIn(f Figures, id string) string {
	if slices.Contains(f.Removed, id) {
		return "removed"
	}
	return msOrNever(f.Convergence[id])
}

func msOrNever(v float64) string {
	if v < 0 {
		return "never"
	}
	return ms(v)
}

func failover(v float64) string {
	switch {
	case v < 0:
		return "none seen"
	case v == 0:
		return "– (leader not hit)"
	}
	return ms(v)
}

// rateBin is the width of the timeline's rate buckets.
const rateBin = time.Second

// Timeline draws h as a PNG in dir: per replica, answered and unanswered
// probes per second, the fault window shaded and leader changes marked. It
// returns the file's name.
func Timeline(h *History, dir string) (string, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%d voters): probes per second by replica", h.Scenario, h.Voters)
	for _, e := range h.Events {
		if strings.HasSuffix(e.What, " faulted") {
			p.Title.Text += "; " + e.What
			break
		}
	}
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "probes/s (solid: answered, dashed: timeout / SERVFAIL / refused)"
	n := max(1, int(h.End.Sub(h.Start)/rateBin)) // whole bins only
	sec := func(t time.Time) float64 { return t.Sub(h.Start).Seconds() }
	ymax := 1.0
	type series struct{ ok, bad []float64 }
	per := map[string]*series{}
	for _, r := range h.Replicas {
		per[r] = &series{ok: make([]float64, n), bad: make([]float64, n)}
	}
	for _, a := range h.Answers {
		i := int(a.Sent.Sub(h.Start) / rateBin)
		s := per[a.Replica]
		if s == nil || i < 0 || i >= n {
			continue
		}
		if a.Answered() {
			s.ok[i] += float64(time.Second / rateBin)
		} else {
			s.bad[i] += float64(time.Second / rateBin)
		}
	}
	for _, s := range per {
		ymax = max(ymax, slices.Max(s.ok), slices.Max(s.bad))
	}
	ymax *= 1.45 // room above the lines for the legend and the leader marks
	if !h.Fault.IsZero() {
		shade, err := plotter.NewPolygon(plotter.XYs{{X: sec(h.Fault), Y: 0}, {X: sec(h.Heal), Y: 0}, {X: sec(h.Heal), Y: ymax}, {X: sec(h.Fault), Y: ymax}})
		if err != nil {
			return "", err
		}
		shade.Color = color.RGBA{R: 255, G: 200, B: 200, A: 255}
		shade.LineStyle.Width = 0
		p.Add(shade)
		p.Legend.Add("fault window", shade)
	}
	for i, r := range h.Replicas {
		s := per[r]
		ok, bad := make(plotter.XYs, n), make(plotter.XYs, n)
		for j := range n {
			x := (float64(j) + 0.5) * rateBin.Seconds()
			ok[j], bad[j] = plotter.XY{X: x, Y: s.ok[j]}, plotter.XY{X: x, Y: s.bad[j]}
		}
		lo, err := plotter.NewLine(ok)
		if err != nil {
			return "", err
		}
		lo.Color, lo.Width = plotutil.Color(i), vg.Points(1.2)
		lb, err := plotter.NewLine(bad)
		if err != nil {
			return "", err
		}
		lb.Color, lb.Width, lb.Dashes = plotutil.Color(i), vg.Points(1.2), []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(lo, lb)
		p.Legend.Add(r, lo)
	}
	var marks plotter.XYLabels
	for k, lc := range leaderChanges(h) {
		x := sec(lc.At)
		line, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax}})
		if err != nil {
			return "", err
		}
		line.Color, line.Dashes = color.Black, []vg.Length{vg.Points(1), vg.Points(2)}
		p.Add(line)
		marks.XYs = append(marks.XYs, plotter.XY{X: x, Y: ymax * (0.96 - 0.05*float64(k%4))})
		marks.Labels = append(marks.Labels, fmt.Sprintf(" %s leads (term %d)", lc.Replica, lc.Term))
	}
	if len(marks.XYs) > 0 {
		labels, err := plotter.NewLabels(marks)
		if err != nil {
			return "", err
		}
		p.Add(labels)
	}
	p.Y.Min, p.Y.Max = 0, ymax
	p.X.Min, p.X.Max = 0, sec(h.End)
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.YOffs = -vg.Points(4)
	name := h.Scenario + ".png"
	if err := p.Save(11*vg.Inch, 5*vg.Inch, filepath.Join(dir, name)); err != nil {
		return "", err
	}
	return name, nil
}

// leaderChanges is Check's list of leader changes.
func leaderChanges(h *History) []LeaderChange {
	var f Figures
	checkFailover(h, &f, Bounds{})
	return f.LeaderChanges
}
