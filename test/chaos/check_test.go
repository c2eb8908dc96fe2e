package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// answer is a quick answer of replica r for name, sent at s and arriving
// 1 ms later, with the applied index read just before.
func answer(r, name string, s float64, index uint64, rcode int, addrs ...string) Answer {
	return Answer{Replica: r, Name: name, Sent: at(s), At: at(s + 0.001), Rcode: rcode, Addrs: addrs,
		Index: index, IndexSent: at(s - 0.001), IndexAt: at(s - 0.0005)}
}

// healthy is a history every property holds on: name a is created with
// address 10.0.0.1 (visible from 2 s), moved to 10.0.0.2 at 5 s; the leader
// r0 is killed at 10 s, r1 leads from 11 s, r0 is back at 20 s.
func healthy() *History {
	h := &History{
		Scenario: "hand-made", Voters: 3, Replicas: []string{"r0", "r1", "r2"},
		Start: at(0), End: at(30), Fault: at(10), Heal: at(20),
		LeaderFaulted: true, FaultedLeaderTerm: 1,
		Writes: []Write{
			{Name: "a", Op: OpCreateSlice, Addr: "10.0.0.1", Sent: at(1), Acked: at(1.01)},
			{Name: "a", Op: OpCreateService, Sent: at(2), Acked: at(2.01)},
			{Name: "a", Op: OpUpdateSlice, Addr: "10.0.0.2", Sent: at(5), Acked: at(5.01)},
			{Name: "m", Op: OpCreateSlice, Addr: "10.0.9.9", Sent: at(10.1), Acked: at(10.2)},
			{Name: "m", Op: OpCreateService, Sent: at(10.3), Acked: at(10.4)},
		},
		Leaders: []LeaderSample{
			{At: at(0.5), Replica: "r0", State: "Leader", Term: 1},
			{At: at(11), Replica: "r1", State: "Leader", Term: 2},
		},
		Down:           []Interval{{Replica: "r0", From: at(10), To: at(20.5), Why: "killed"}},
		Lagging:        []Interval{{Replica: "r0", From: at(20.5), To: at(21), Why: "catching up"}},
		Marker:         "m",
		MarkerExpected: []string{"r1", "r2"},
		MarkerAnswered: map[string]time.Time{"r1": at(11.5), "r2": at(11.6)},
		WritesStopped:  at(25),
		Final:          map[string]string{"a": "10.0.0.2", "m": "10.0.9.9"},
		Converged:      map[string]time.Time{"r0": at(25.1), "r1": at(25.1), "r2": at(25.2)},
	}
	for _, r := range h.Replicas {
		h.Answers = append(h.Answers,
			answer(r, "a", 0.5, 3, 3),
			answer(r, "a", 3, 5, 0, "10.0.0.1"),
			answer(r, "a", 6, 7, 0, "10.0.0.2"),
			answer(r, "never", 7, 7, 3),
			answer(r, "a", 25, 9, 0, "10.0.0.2"),
		)
		if r != "r0" {
			h.Answers = append(h.Answers, answer(r, "a", 15, 8, 0, "10.0.0.2"))
		}
	}
	return h
}

// writesOfB make name b show 10.0.1.1 from 2 s and 10.0.1.2 from 5 s.
var writesOfB = []Write{
	{Name: "b", Op: OpCreateSlice, Addr: "10.0.1.1", Sent: at(1), Acked: at(1.01)},
	{Name: "b", Op: OpCreateService, Sent: at(2), Acked: at(2.01)},
	{Name: "b", Op: OpUpdateSlice, Addr: "10.0.1.2", Sent: at(5), Acked: at(5.01)},
}

var testBounds = Bounds{Staleness: 10 * time.Second, Failover: 5 * time.Second, Marker: 10 * time.Second}

// TestCheck: the healthy history passes every property, and each change
// below breaks exactly the property it names (or none, for the changes that
// are allowed).
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *History)
		fails  string // "" for none
	}{
		{"healthy", func(*History) {}, ""},
		{"timeout on a live replica", func(h *History) {
			h.Answers = append(h.Answers, Answer{Replica: "r1", Name: "a", Sent: at(12), At: at(13), Rcode: -1, Err: "timeout"})
		}, PropAvailability},
		{"SERVFAIL after the heal", func(h *History) {
			h.Answers = append(h.Answers, answer("r2", "a", 22, 9, 2))
		}, PropAvailability},
		{"timeout while down is not counted", func(h *History) {
			h.Answers = append(h.Answers, Answer{Replica: "r0", Name: "a", Sent: at(12), At: at(13), Rcode: -1, Err: "timeout"})
		}, ""},
		{"query in flight when the replica went down is not counted", func(h *History) {
			h.Answers = append(h.Answers, Answer{Replica: "r0", Name: "a", Sent: at(9.99), At: at(10.99), Rcode: -1, Err: "timeout"})
		}, ""},
		{"address the API never held", func(h *History) {
			h.Answers = append(h.Answers, answer("r2", "a", 16, 8, 0, "10.6.6.6"))
		}, PropNoPhantom},
		{"a name that never existed answered", func(h *History) {
			h.Answers = append(h.Answers, answer("r2", "never", 16, 8, 0, "10.0.0.2"))
		}, PropNoPhantom},
		{"a state answered before it was written", func(h *History) {
			h.Answers = append(h.Answers, answer("r2", "a", 4, 6, 0, "10.0.0.2"))
		}, PropNoPhantom},
		{"an unacknowledged write may show", func(h *History) {
			h.Writes = append(h.Writes, Write{Name: "a", Op: OpUpdateSlice, Addr: "10.0.0.3", Sent: at(21), Err: "timeout"})
			h.Answers = append(h.Answers, answer("r2", "a", 22, 9, 0, "10.0.0.3"))
			h.Converged = map[string]time.Time{"r0": at(25.1), "r1": at(25.1), "r2": at(25.2)}
		}, PropMonotonic}, // r2 then shows 10.0.0.2 at 25 s: older than 10.0.0.3
		{"a refused write never shows", func(h *History) {
			h.Writes = append(h.Writes, Write{Name: "a", Op: OpUpdateSlice, Addr: "10.0.0.3", Sent: at(21), Err: "connection refused", Refused: true})
			h.Answers = append(h.Answers, answer("r2", "a", 22, 9, 0, "10.0.0.3"))
		}, PropNoPhantom},
		{"older state after a newer one", func(h *History) {
			h.Answers = append(h.Answers, answer("r1", "a", 8, 7, 0, "10.0.0.1"))
		}, PropMonotonic},
		{"older state across a restart", func(h *History) {
			h.Answers = append(h.Answers, answer("r0", "a", 20.6, 7, 0, "10.0.0.1"))
		}, PropMonotonic},
		{"older state in overlapping queries is not ordered", func(h *History) {
			newer := answer("r1", "a", 5.5, 6, 0, "10.0.0.2")
			older := answer("r1", "a", 5.6, 6, 0, "10.0.0.1")
			newer.At = at(5.9) // older was sent before newer arrived
			h.Answers = append(h.Answers, newer, older)
		}, ""},
		{"absent again after a delete, then the address", func(h *History) {
			h.Writes = append(h.Writes, Write{Name: "a", Op: OpDeleteService, Sent: at(16), Acked: at(16.01)})
			h.Answers = append(h.Answers, answer("r2", "a", 17, 9, 3))
			h.Final["a"] = ObsAbsent
		}, PropMonotonic}, // r2 answers 10.0.0.2 at 25 s after showing the deletion
		{"applied index goes back", func(h *History) {
			h.Answers = append(h.Answers, answer("r2", "a", 16, 4, 0, "10.0.0.2"))
		}, PropMonotonic},
		{"a replica whose data was wiped is held to its answers since the wipe", func(h *History) {
			h.Down = append(h.Down, Interval{Replica: "r2", From: at(15.9), To: at(15.95), Why: WhyWiped})
			h.Answers = append(h.Answers, answer("r2", "a", 16, 4, 0, "10.0.0.2"))
		}, ""},
		{"and to them", func(h *History) {
			h.Down = append(h.Down, Interval{Replica: "r2", From: at(15.9), To: at(15.95), Why: WhyWiped})
			h.Answers = append(h.Answers, answer("r2", "a", 16, 5, 0, "10.0.0.2"), answer("r2", "a", 16.5, 4, 0, "10.0.0.2"))
		}, PropMonotonic},
		{"applied index 0 (nothing served) is not a regression", func(h *History) {
			h.Answers = append(h.Answers, answer("r0", "a", 20.6, 0, 2))
		}, PropAvailability}, // but it is a SERVFAIL of a live replica
		{"stale beyond the bound on a majority replica", func(h *History) {
			h.Writes = append(h.Writes, writesOfB...)
			h.Answers = append(h.Answers, answer("r1", "b", 17, 8, 0, "10.0.1.1"))
		}, PropStaleness},
		{"time the API server was down does not count as staleness", func(h *History) {
			h.Writes = append(h.Writes, writesOfB...)
			h.APIDown = []Interval{{From: at(6), To: at(14)}}
			h.Answers = append(h.Answers, answer("r1", "b", 17, 8, 0, "10.0.1.1")) // 12 s after, 4 s of them with the API up
		}, ""},
		{"stale on a lagging replica is reported apart", func(h *History) {
			h.Writes = append(h.Writes, writesOfB...)
			h.Lagging = append(h.Lagging, Interval{Replica: "r1", From: at(16), To: at(18)})
			h.Answers = append(h.Answers, answer("r1", "b", 17, 8, 0, "10.0.1.1"))
		}, ""},
		{"stale on a replica that is coming back is reported apart", func(h *History) {
			h.Writes = append(h.Writes, writesOfB...)
			h.Answers = append(h.Answers, answer("r0", "b", 20.2, 8, 0, "10.0.1.1"))
		}, ""},
		{"a replica never converges", func(h *History) {
			delete(h.Converged, "r2")
		}, PropConvergence},
		{"a replica taken out of the cluster need not converge", func(h *History) {
			delete(h.Converged, "r2")
			h.Removed = []string{"r2"}
		}, ""},
		{"no final state recorded", func(h *History) {
			h.Final = nil
		}, PropConvergence},
		{"no new leader", func(h *History) {
			h.Leaders = h.Leaders[:1]
		}, PropFailover},
		{"new leader too late", func(h *History) {
			h.Leaders[1].At = at(16)
		}, PropFailover},
		{"the old leader in its old term is no failover", func(h *History) {
			h.Leaders[1] = LeaderSample{At: at(11), Replica: "r0", State: "Leader", Term: 1}
		}, PropFailover},
		{"the write after the fault never reaches a live replica", func(h *History) {
			delete(h.MarkerAnswered, "r2")
		}, PropFailover},
		{"the write after the fault is late", func(h *History) {
			h.MarkerAnswered["r2"] = at(25)
		}, PropFailover},
		{"in an API outage the write is timed from when the API took it", func(h *History) {
			h.MarkerAnswered["r2"] = at(25)
			h.MarkerFrom = at(24)
		}, ""},
		{"or from the outage's end, when the API took it before the replicas could read it", func(h *History) {
			h.APIDown = []Interval{{From: at(10), To: at(24)}}
			h.MarkerAnswered["r2"] = at(25)
			h.MarkerFrom = at(12)
		}, ""},
		{"an outage that ended before the API took the write changes nothing", func(h *History) {
			h.APIDown = []Interval{{From: at(10), To: at(11)}}
			h.MarkerAnswered["r2"] = at(25)
			h.MarkerFrom = at(12)
		}, PropFailover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healthy()
			tc.change(h)
			res := Check(h, testBounds)
			if len(res.Verdicts) != len(Properties) {
				t.Fatalf("%d verdicts, want %d", len(res.Verdicts), len(Properties))
			}
			for _, v := range res.Verdicts {
				wantPass := v.Property != tc.fails
				if v.Pass != wantPass {
					t.Errorf("%s: pass=%v, want %v (%s)", v.Property, v.Pass, wantPass, v.Detail)
				}
			}
			if res.Passed() != (tc.fails == "") {
				t.Errorf("Passed()=%v", res.Passed())
			}
		})
	}
}

// TestMarkerBeforeOutageSeenOver: a replica that answers the write after an
// API outage before the harness saw the outage end (it polls for it) counts
// as answering at once, and the detail says so.
func TestMarkerBeforeOutageSeenOver(t *testing.T) {
	h := healthy()
	h.APIDown = []Interval{{From: at(10), To: at(24)}}
	h.MarkerFrom = at(12)
	h.MarkerAnswered = map[string]time.Time{"r1": at(23.5), "r2": at(24.2)}
	res := Check(h, testBounds)
	v := res.Verdicts[slices.IndexFunc(res.Verdicts, func(v Verdict) bool { return v.Property == PropFailover })]
	if !v.Pass || !strings.Contains(v.Detail, "before the end of the API outage was seen") {
		t.Errorf("failover: pass=%v, %q", v.Pass, v.Detail)
	}
	if got := res.Figures.MarkerAllLive; got != 200 {
		t.Errorf("MarkerAllLive = %v ms, want 200", got)
	}
}
