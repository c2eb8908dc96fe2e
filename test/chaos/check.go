package chaos

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Bounds are the limits the time-bound properties are held to.
type Bounds struct {
	// Staleness bounds δ on replicas connected to the majority.
	Staleness time.Duration
	// Failover bounds the time from the fault to a new leader, when the
	// leader was hit.
	Failover time.Duration
	// Marker bounds the time from the fault until every live replica
	// connected to the majority answers the write made after it.
	Marker time.Duration
}

// Property names, in the report's order.
const (
	PropAvailability = "availability"
	PropNoPhantom    = "no phantom"
	PropMonotonic    = "monotonic"
	PropStaleness    = "bounded staleness"
	PropConvergence  = "convergence"
	PropFailover     = "failover"
)

// Properties lists every property Check judges.
var Properties = []string{PropAvailability, PropNoPhantom, PropMonotonic, PropStaleness, PropConvergence, PropFailover}

// Verdict is one property's outcome.
type Verdict struct {
	Property string `json:"property"`
	Pass     bool   `json:"pass"`
	Detail   string `json:"detail"`
}

// Ratio counts answered queries out of those that counted.
type Ratio struct {
	Answered int `json:"answered"`
	Total    int `json:"total"`
}

func (r Ratio) String() string {
	if r.Total == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f%% (%d/%d)", 100*float64(r.Answered)/float64(r.Total), r.Answered, r.Total)
}

// Phases of a scenario: before the fault, during it, after the heal.
type Phases struct {
	Before Ratio `json:"before"`
	During Ratio `json:"during"`
	After  Ratio `json:"after"`
}

// Dist summarises durations in milliseconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func (d Dist) String() string {
	if d.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s / %s (n=%d)", ms(d.P50), ms(d.P99), ms(d.Max), d.N)
}

func ms(v float64) string { return fmt.Sprintf("%.0f ms", v) }

func distOf(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return float64(ds[max(i, 0)].Microseconds()) / 1000
	}
	return Dist{N: len(ds), P50: at(0.5), P99: at(0.99), Max: at(1)}
}

// LeaderChange is a new (leader, term) as the replicas reported it.
type LeaderChange struct {
	At      time.Time `json:"at"`
	Replica string    `json:"replica"`
	Term    uint64    `json:"term"`
}

// Figures are the measured values of one scenario.
type Figures struct {
	Queries      int               `json:"queries"`
	Writes       int               `json:"writes"`
	WritesFailed int               `json:"writes_failed"`
	Availability map[string]Phases `json:"availability"`
	Phantoms     []string          `json:"phantoms"`
	Regressions  []string          `json:"regressions"`
	// StalenessMajority is δ over every answer of a replica connected to
	// the majority; StalenessLagging over those of a replica cut off or
	// catching up.
	StalenessMajority Dist   `json:"staleness_majority"`
	StalenessLagging  Dist   `json:"staleness_lagging"`
	StalestMajority   string `json:"stalest_majority"`
	// CaughtUp is, per replica that lagged, how long it lagged (the cut-off
	// and catch-up time), in ms.
	CaughtUp map[string]float64 `json:"caught_up_ms"`
	// Convergence is, per replica, the time from the end of writes until
	// it answered every name as the API holds it, in ms; -1: never.
	Convergence map[string]float64 `json:"convergence_ms"`
	// Removed are the replicas taken out of the cluster, which are not
	// expected to converge.
	Removed []string `json:"removed,omitempty"`
	// Failover is the time from the fault to a new leader in ms, -1 when
	// none was seen, 0 when the leader was not hit.
	Failover      float64        `json:"failover_ms"`
	LeaderChanges []LeaderChange `json:"leader_changes"`
	// MarkerAllLive is the time from the fault (History.MarkerFrom, or
	// the end of the API server outage it fell in) until
	// every live replica connected to the majority answered the write made
	// after it, in ms; -1 when one never did.
	MarkerAllLive float64 `json:"marker_all_live_ms"`
}

// Result is what Check makes of a History.
type Result struct {
	Scenario string    `json:"scenario"`
	Voters   int       `json:"voters"`
	Figures  Figures   `json:"figures"`
	Verdicts []Verdict `json:"verdicts"`
}

// Passed reports whether every property held.
func (r Result) Passed() bool {
	for _, v := range r.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return true
}

// state is one DNS-visible state of a name in the API.
type state struct {
	obs   string
	sent  time.Time // of the write that made it; zero for the initial absence
	acked time.Time // zero when not acknowledged (uncertain)
}

// timeline is the states a name went through, in order. A state whose
// write was not acknowledged is possible but uncertain, and ends the
// timeline: the writer leaves such an object alone.
type timeline []state

// timelines derives every name's states from the writes.
func timelines(ws []Write) map[string]timeline {
	byName := map[string][]Write{}
	for _, w := range ws {
		byName[w.Name] = append(byName[w.Name], w)
	}
	out := map[string]timeline{}
	for name, ws := range byName {
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].Sent.Before(ws[j].Sent) })
		tl := timeline{{obs: ObsAbsent}}
		service, addr := false, ""
		for _, w := range ws {
			if w.Refused {
				continue
			}
			switch w.Op {
			case OpCreateSlice, OpUpdateSlice:
				addr = w.Addr
			case OpDeleteSlice:
				addr = ""
			case OpCreateService:
				service = true
			case OpDeleteService:
				service = false
			}
			obs := ObsAbsent
			if service {
				obs = ObsNoData
				if addr != "" {
					obs = addr
				}
			}
			if obs != tl[len(tl)-1].obs {
				tl = append(tl, state{obs: obs, sent: w.Sent, acked: w.Acked})
			}
			if w.Acked.IsZero() {
				break
			}
		}
		out[name] = tl
	}
	return out
}

// matches returns the indexes of the states of tl showing obs; with
// sentBefore set, only those whose write was sent before it.
func (tl timeline) matches(obs string, sentBefore time.Time) []int {
	var ks []int
	for k, s := range tl {
		if s.obs == obs && (sentBefore.IsZero() || s.sent.Before(sentBefore)) {
			ks = append(ks, k)
		}
	}
	return ks
}

// staleness is how long before at the API last held state k (0 if it still
// did), less the time in apiDown, and false when that is not known (the
// next write is uncertain).
func (tl timeline) staleness(k int, at time.Time, apiDown []Interval) (time.Duration, bool) {
	if k+1 == len(tl) {
		return 0, true
	}
	next := tl[k+1]
	if next.acked.IsZero() {
		return 0, false
	}
	d := at.Sub(next.acked)
	for _, iv := range apiDown {
		if from, to := maxTime(iv.From, next.acked), minTime(iv.To, at); to.After(from) {
			d -= to.Sub(from)
		}
	}
	return max(0, d), true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Check judges h against every property, holding the time-bound ones to b.
func Check(h *History, b Bounds) Result {
	res := Result{Scenario: h.Scenario, Voters: h.Voters}
	f := &res.Figures
	f.Queries = len(h.Answers)
	f.Writes = len(h.Writes)
	for _, w := range h.Writes {
		if w.Acked.IsZero() {
			f.WritesFailed++
		}
	}
	tls := timelines(h.Writes)
	tlOf := func(name string) timeline {
		if tl, ok := tls[name]; ok {
			return tl
		}
		return timeline{{obs: ObsAbsent}} // never written
	}

	res.Verdicts = append(res.Verdicts,
		checkAvailability(h, f),
		checkPhantoms(h, f, tlOf),
		checkMonotonic(h, f, tlOf),
		checkStaleness(h, f, tlOf, b),
		checkConvergence(h, f),
		checkFailover(h, f, b),
	)
	return res
}

// overlapsDown reports whether a's query was in flight while its replica
// was down.
func overlapsDown(h *History, a Answer) bool {
	return slices.ContainsFunc(h.Down, func(iv Interval) bool {
		return iv.Replica == a.Replica && a.Sent.Before(iv.To) && !a.At.Before(iv.From)
	})
}

func checkAvailability(h *History, f *Figures) Verdict {
	f.Availability = map[string]Phases{}
	for _, r := range h.Replicas {
		f.Availability[r] = Phases{}
	}
	for _, a := range h.Answers {
		if overlapsDown(h, a) {
			continue
		}
		p := f.Availability[a.Replica]
		ratio := &p.After
		switch {
		case a.Sent.Before(h.Fault):
			ratio = &p.Before
		case a.Sent.Before(h.Heal):
			ratio = &p.During
		}
		ratio.Total++
		if a.Answered() {
			ratio.Answered++
		}
		f.Availability[a.Replica] = p
	}
	v := Verdict{Property: PropAvailability, Pass: true, Detail: "every query to a live replica answered"}
	var failed []string
	for _, r := range h.Replicas {
		p := f.Availability[r]
		for _, x := range []struct {
			phase string
			r     Ratio
		}{{"before", p.Before}, {"during", p.During}, {"after", p.After}} {
			if x.r.Answered < x.r.Total {
				failed = append(failed, fmt.Sprintf("%s %s %s", r, x.phase, x.r))
			}
		}
	}
	if len(failed) > 0 {
		v.Pass, v.Detail = false, "unanswered: "+join(failed, 4)
	}
	return v
}

func checkPhantoms(h *History, f *Figures, tlOf func(string) timeline) Verdict {
	for _, a := range h.Answers {
		obs := a.Observable()
		if obs == "" {
			continue
		}
		if len(tlOf(a.Name).matches(obs, a.At)) == 0 {
			f.Phantoms = append(f.Phantoms, fmt.Sprintf("%s answered %s %s at %s", a.Replica, a.Name, obs, offset(h, a.At)))
		}
	}
	v := Verdict{Property: PropNoPhantom, Pass: len(f.Phantoms) == 0, Detail: "every answer held a state the API held"}
	if !v.Pass {
		v.Detail = fmt.Sprintf("%d answers the API never held: %s", len(f.Phantoms), join(f.Phantoms, 3))
	}
	return v
}

// checkMonotonic: once a replica has answered with a state (or applied
// index), no query sent after that answer arrived gets an older one. Pairs
// of queries that overlapped in time are not ordered.
func checkMonotonic(h *History, f *Figures, tlOf func(string) timeline) Verdict {
	for _, r := range h.Replicas {
		// A replica whose data was wiped forgot what it showed: it is held
		// to monotonic answers from the wipe on, not to its life before
		// (it serves from its first snapshot, which may be older).
		var wipes []time.Time
		for _, iv := range h.Down {
			if iv.Replica == r && iv.Why == WhyWiped {
				wipes = append(wipes, iv.From)
			}
		}
		slices.SortFunc(wipes, time.Time.Compare)
		epochs := make([][]Answer, len(wipes)+1)
		for _, a := range h.Answers {
			if a.Replica == r {
				wipesBefore := sort.Search(len(wipes), func(i int) bool { return wipes[i].After(a.Sent) })
				epochs[wipesBefore] = append(epochs[wipesBefore], a)
			}
		}
		for _, as := range epochs {
			f.Regressions = append(f.Regressions, stateRegressions(h, as, tlOf)...)
			f.Regressions = append(f.Regressions, indexRegressions(h, as)...)
		}
	}
	v := Verdict{Property: PropMonotonic, Pass: len(f.Regressions) == 0, Detail: "no replica went back in state or applied index"}
	if !v.Pass {
		v.Detail = fmt.Sprintf("%d regressions: %s", len(f.Regressions), join(f.Regressions, 3))
	}
	return v
}

func stateRegressions(h *History, as []Answer, tlOf func(string) timeline) []string {
	bySent := slices.Clone(as)
	sort.SliceStable(bySent, func(i, j int) bool { return bySent[i].Sent.Before(bySent[j].Sent) })
	byAt := make([]int, len(bySent)) // indexes into bySent, ordered by arrival
	for i := range byAt {
		byAt[i] = i
	}
	sort.SliceStable(byAt, func(i, j int) bool { return bySent[byAt[i]].At.Before(bySent[byAt[j]].At) })
	shownAt := make([]int, len(bySent)) // the state each answer is taken to show; -1 none
	shown := map[string]int{}           // name → newest state shown by answers arrived so far
	var out []string
	next := 0
	for i, a := range bySent {
		for next < len(byAt) && bySent[byAt[next]].At.Before(a.Sent) {
			j := byAt[next]
			if k := shownAt[j]; k >= 0 {
				shown[bySent[j].Name] = max(shown[bySent[j].Name], k)
			}
			next++
		}
		shownAt[i] = -1
		obs := a.Observable()
		if obs == "" {
			continue
		}
		ks := tlOf(a.Name).matches(obs, time.Time{})
		if len(ks) == 0 {
			continue // a phantom, reported as such
		}
		floor := shown[a.Name]
		k := slices.IndexFunc(ks, func(k int) bool { return k >= floor })
		if k < 0 {
			out = append(out, fmt.Sprintf("%s answered %s %s at %s after showing a newer state", a.Replica, a.Name, obs, offset(h, a.At)))
			shownAt[i] = ks[len(ks)-1]
			continue
		}
		shownAt[i] = ks[k]
	}
	return out
}

func indexRegressions(h *History, as []Answer) []string {
	var samples []Answer
	for _, a := range as {
		if a.Index > 0 {
			samples = append(samples, a)
		}
	}
	bySent := slices.Clone(samples)
	sort.SliceStable(bySent, func(i, j int) bool { return bySent[i].IndexSent.Before(bySent[j].IndexSent) })
	byAt := slices.Clone(samples)
	sort.SliceStable(byAt, func(i, j int) bool { return byAt[i].IndexAt.Before(byAt[j].IndexAt) })
	var out []string
	var seen uint64
	next := 0
	for _, s := range bySent {
		for next < len(byAt) && byAt[next].IndexAt.Before(s.IndexSent) {
			seen = max(seen, byAt[next].Index)
			next++
		}
		if s.Index < seen {
			out = append(out, fmt.Sprintf("%s reported applied index %d at %s after %d", s.Replica, s.Index, offset(h, s.IndexAt), seen))
		}
	}
	return out
}

func checkStaleness(h *History, f *Figures, tlOf func(string) timeline, b Bounds) Verdict {
	var majority, lagging []time.Duration
	var stalest time.Duration
	for _, a := range h.Answers {
		obs := a.Observable()
		if obs == "" {
			continue
		}
		tl := tlOf(a.Name)
		best, known := time.Duration(-1), false
		for _, k := range tl.matches(obs, a.At) {
			if d, ok := tl.staleness(k, a.At, h.APIDown); ok && (best < 0 || d < best) {
				best, known = d, true
			}
		}
		if !known {
			continue
		}
		if in(h.Lagging, a.Replica, a.Sent) || in(h.Down, a.Replica, a.Sent) {
			lagging = append(lagging, best)
			continue
		}
		majority = append(majority, best)
		if best > stalest {
			stalest = best
			f.StalestMajority = fmt.Sprintf("%s answered %s %s at %s", a.Replica, a.Name, obs, offset(h, a.At))
		}
	}
	f.StalenessMajority, f.StalenessLagging = distOf(majority), distOf(lagging)
	v := Verdict{Property: PropStaleness, Pass: stalest <= b.Staleness,
		Detail: fmt.Sprintf("majority δ max %s ≤ %s", stalest.Round(time.Millisecond), b.Staleness)}
	if !v.Pass {
		v.Detail = fmt.Sprintf("majority δ max %s > %s: %s", stalest.Round(time.Millisecond), b.Staleness, f.StalestMajority)
	}
	return v
}

func checkConvergence(h *History, f *Figures) Verdict {
	f.CaughtUp = map[string]float64{}
	for _, iv := range h.Lagging {
		f.CaughtUp[iv.Replica] = max(f.CaughtUp[iv.Replica], msOf(iv.To.Sub(iv.From)))
	}
	f.Convergence = map[string]float64{}
	var never []string
	f.Removed = h.Removed
	for _, r := range h.Replicas {
		if slices.Contains(h.Removed, r) {
			continue
		}
		at, ok := h.Converged[r]
		if !ok {
			f.Convergence[r] = -1
			never = append(never, r)
			continue
		}
		f.Convergence[r] = msOf(max(0, at.Sub(h.WritesStopped)))
	}
	v := Verdict{Property: PropConvergence, Pass: len(never) == 0 && len(h.Final) > 0,
		Detail: fmt.Sprintf("every replica answered all %d names as the API holds them", len(h.Final))}
	switch {
	case len(h.Final) == 0:
		v.Detail = "the API's final state was not recorded"
	case len(never) > 0:
		v.Detail = fmt.Sprintf("never matched the API's final state: %v", never)
	}
	return v
}

func checkFailover(h *History, f *Figures, b Bounds) Verdict {
	samples := slices.Clone(h.Leaders)
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].At.Before(samples[j].At) })
	var cur LeaderChange
	for _, s := range samples {
		if s.State == "Leader" && s.Term >= cur.Term && (s.Replica != cur.Replica || s.Term != cur.Term) {
			cur = LeaderChange{At: s.At, Replica: s.Replica, Term: s.Term}
			f.LeaderChanges = append(f.LeaderChanges, cur)
		}
	}
	v := Verdict{Property: PropFailover, Pass: true}
	var problems []string
	if h.LeaderFaulted {
		f.Failover = -1
		for _, s := range samples {
			if s.State == "Leader" && s.Term > h.FaultedLeaderTerm && !s.At.Before(h.Fault) {
				f.Failover = msOf(s.At.Sub(h.Fault))
				break
			}
		}
		if f.Failover < 0 || f.Failover > msOf(b.Failover) {
			problems = append(problems, fmt.Sprintf("no new leader within %s", b.Failover))
		}
	}
	f.MarkerAllLive = 0
	from := h.MarkerFrom
	if from.IsZero() {
		from = h.Fault
	}
	// The API server can take the write at its own address before the
	// replicas can read it (on the node, kube-proxy routes the kubernetes
	// Service to it again only after its own watch recovers, seen 30–80 s
	// later): the clock starts when the outage ends for the replicas. That
	// end is polled, so a replica may answer before it was seen.
	early := false
	for _, iv := range h.APIDown {
		if !from.Before(iv.From) && from.Before(iv.To) {
			from = iv.To
		}
	}
	var missing []string
	for _, r := range h.MarkerExpected {
		at, ok := h.MarkerAnswered[r]
		if !ok {
			missing = append(missing, r)
			continue
		}
		f.MarkerAllLive = max(f.MarkerAllLive, msOf(at.Sub(from)))
		early = early || at.Before(from)
	}
	if h.Marker == "" || len(h.MarkerExpected) == 0 {
		problems = append(problems, "no write after the fault was followed")
	}
	if len(missing) > 0 {
		f.MarkerAllLive = -1
		problems = append(problems, fmt.Sprintf("the write after the fault never reached %v", missing))
	} else if f.MarkerAllLive > msOf(b.Marker) {
		problems = append(problems, fmt.Sprintf("the write after the fault took %s > %s to reach every live replica", ms(f.MarkerAllLive), b.Marker))
	}
	if len(problems) > 0 {
		v.Pass, v.Detail = false, join(problems, 3)
		return v
	}
	v.Detail = fmt.Sprintf("fault → write answered by every live replica in %s", ms(f.MarkerAllLive))
	if early {
		v.Detail += " (some before the end of the API outage was seen)"
	}
	if h.LeaderFaulted {
		v.Detail = fmt.Sprintf("new leader after %s; ", ms(f.Failover)) + v.Detail
	}
	return v
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// offset formats t as seconds since the scenario started.
func offset(h *History, t time.Time) string { return fmt.Sprintf("t=%.3fs", t.Sub(h.Start).Seconds()) }

// join shows the first n of xs and how many more there are.
func join(xs []string, n int) string {
	if len(xs) <= n {
		return fmt.Sprint(xs)
	}
	return fmt.Sprintf("%v and %d more", xs[:n], len(xs)-n)
}
