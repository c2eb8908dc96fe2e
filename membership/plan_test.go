package membership

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kdnsd/kdnsd/internal/kubeclient/kubeclienttest"
	"github.com/kdnsd/kdnsd/raftnode"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// world builds a planInput: servers "id" (voter) or "id/nonvoter" at
// ip-of-id:7000; pods "name=ip" with flags "+deleting", "+nonvoter";
// up lists the servers whose probe answers: "id" without Raft state,
// "id+state" with state, "id+blank" with state but started blank, "id+staged"
// seen as a non-voter since; ":N" after it sets the applied index. applied
// is the leader's.
type world struct {
	self     string
	applied  uint64
	replicas int
	servers  []string
	pods     []string
	up       []string
	down     map[string]time.Duration // unreachable for so long
	dead     time.Duration
}

func (w world) input() planInput {
	in := planInput{
		self: w.self, sts: "kdnsd", raftAddr: func(ip string) string { return ip + ":7000" },
		view:   view{pods: map[string]pod{}, replicas: w.replicas},
		health: map[string]probeResult{}, downSince: map[string]time.Time{},
		now: now, deadTimeout: w.dead,
	}
	if in.deadTimeout == 0 {
		in.deadTimeout = 5 * time.Minute
	}
	for _, s := range w.servers {
		id, kind, _ := strings.Cut(s, "/")
		addr, id2, ok := strings.Cut(id, "@")
		if ok {
			id = id2
		} else {
			addr = "ip-" + id
		}
		in.servers = append(in.servers, raftnode.ServerInfo{ID: id, Address: addr + ":7000", Voter: kind != "nonvoter"})
	}
	for _, p := range w.pods {
		name, rest, _ := strings.Cut(p, "=")
		ip, flags, _ := strings.Cut(rest, "+")
		in.view.pods[name] = pod{name: name, ip: ip, deleting: strings.Contains(flags, "deleting"), nonVoter: strings.Contains(flags, "nonvoter")}
	}
	for _, u := range w.up {
		u, applied, _ := strings.Cut(u, ":")
		id, state, _ := strings.Cut(u, "+")
		st := statusWithState(state != "")
		if state == "blank" || state == "staged" {
			st.Admission = raftnode.Admission(state)
		}
		st.AppliedIndex, _ = strconv.ParseUint(applied, 10, 64)
		in.health[id] = probeResult{status: st}
	}
	for _, s := range in.servers {
		if _, ok := in.health[s.ID]; !ok && s.ID != w.self {
			in.health[s.ID] = probeResult{err: errors.New("refused")}
			in.downSince[s.ID] = now.Add(-w.down[s.ID])
		}
	}
	self := statusWithState(true)
	self.AppliedIndex = w.applied
	in.health[w.self] = probeResult{status: self}
	return in
}

func TestPlan(t *testing.T) {
	three := []string{"kdnsd-0", "kdnsd-1", "kdnsd-2"}
	threePods := []string{"kdnsd-0=ip-kdnsd-0", "kdnsd-1=ip-kdnsd-1", "kdnsd-2=ip-kdnsd-2"}
	for _, tc := range []struct {
		name    string
		w       world
		want    string // action.String() prefix, "" for none
		pending bool
		note    string // a note that must be there
	}{
		{
			name: "converged",
			w:    world{self: "kdnsd-0", replicas: 3, servers: three, pods: threePods, up: three},
		},
		{
			name: "pod IP changed",
			w: world{self: "kdnsd-0", replicas: 3, servers: three, up: three,
				pods: []string{"kdnsd-0=ip-kdnsd-0", "kdnsd-1=10.0.0.9", "kdnsd-2=ip-kdnsd-2"}},
			want: "update kdnsd-1 to 10.0.0.9:7000", pending: true,
		},
		{
			name: "address of a deleting pod is left alone",
			w: world{self: "kdnsd-0", replicas: 3, servers: three, up: three,
				pods: []string{"kdnsd-0=ip-kdnsd-0", "kdnsd-1=10.0.0.9+deleting", "kdnsd-2=ip-kdnsd-2"}},
		},
		{
			name: "scale up adds a non-voter first",
			w: world{self: "kdnsd-0", replicas: 4, servers: three, up: three,
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3")},
			want: "add kdnsd-3 at ip-kdnsd-3:7000 as non-voter", pending: true,
		},
		{
			name: "no add without an IP, or while deleting, or beyond replicas",
			w: world{self: "kdnsd-0", replicas: 4, servers: three, up: three,
				pods: append(threePods, "kdnsd-3=", "kdnsd-4=ip-kdnsd-4", "kdnsd-5=ip-kdnsd-5+deleting")},
		},
		{
			name: "staged voter promoted once it answers with state",
			w: world{self: "kdnsd-0", replicas: 4, servers: append(three, "kdnsd-3/nonvoter"),
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3"), up: append(three, "kdnsd-3+state")},
			want: "promote kdnsd-3 to voter", pending: true,
		},
		{
			name: "wiped voter demoted before anything else",
			w: world{self: "kdnsd-0", replicas: 4, servers: three, up: []string{"kdnsd-0", "kdnsd-1+blank", "kdnsd-2+state"},
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3")},
			want: "demote kdnsd-1 to non-voter", pending: true,
		},
		{
			name: "unreachable voter is not demoted",
			w:    world{self: "kdnsd-0", replicas: 3, servers: three, pods: threePods, up: []string{"kdnsd-0", "kdnsd-2+state"}},
		},
		{
			name: "wiped non-voter not yet staged waits",
			w: world{self: "kdnsd-0", replicas: 3, servers: []string{"kdnsd-0", "kdnsd-1/nonvoter", "kdnsd-2"}, pods: threePods,
				up: []string{"kdnsd-0", "kdnsd-1+blank", "kdnsd-2+state"}},
			pending: true, note: "kdnsd-1 is staged as non-voter: has not yet seen itself as a non-voter",
		},
		{
			name: "staged voter far behind the leader waits",
			w: world{self: "kdnsd-0", applied: 5000, replicas: 3, servers: []string{"kdnsd-0", "kdnsd-1/nonvoter", "kdnsd-2"}, pods: threePods,
				up: []string{"kdnsd-0", "kdnsd-1+staged:100", "kdnsd-2+state"}},
			pending: true, note: "catching up: applied 100 of 5000",
		},
		{
			name: "staged voter caught up is promoted",
			w: world{self: "kdnsd-0", applied: 5000, replicas: 3, servers: []string{"kdnsd-0", "kdnsd-1/nonvoter", "kdnsd-2"}, pods: threePods,
				up: []string{"kdnsd-0", "kdnsd-1+staged:4990", "kdnsd-2+state"}},
			want: "promote kdnsd-1 to voter (caught up: applied 4990 of 5000)", pending: true,
		},
		{
			name: "staged voter without state waits",
			w: world{self: "kdnsd-0", replicas: 4, servers: append(three, "kdnsd-3/nonvoter"),
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3"), up: append(three, "kdnsd-3")},
			pending: true, note: "kdnsd-3 is staged as non-voter",
		},
		{
			name: "read replica added as non-voter",
			w: world{self: "kdnsd-0", replicas: 3, servers: three, up: three,
				pods: append(threePods, "replica-0=10.1.0.1+nonvoter")},
			want: "add replica-0 at 10.1.0.1:7000 as non-voter (read replica)", pending: true,
		},
		{
			name: "read replica never promoted",
			w: world{self: "kdnsd-0", replicas: 3, servers: append(three, "10.1.0.1@replica-0/nonvoter"), up: append(three, "replica-0+state"),
				pods: append(threePods, "replica-0=10.1.0.1+nonvoter")},
		},
		{
			name: "pod labelled non-voter in the voter StatefulSet is added as non-voter",
			w: world{self: "kdnsd-0", replicas: 4, servers: three, up: three,
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3+nonvoter")},
			want: "add kdnsd-3 at ip-kdnsd-3:7000 as non-voter (read replica)", pending: true,
		},
		{
			name: "scale down: the highest ordinal whose pod is gone",
			w:    world{self: "kdnsd-0", replicas: 3, servers: append(three, "kdnsd-3", "kdnsd-4"), pods: threePods, up: three},
			want: "remove kdnsd-4 (scaled down to 3 replicas and its pod is gone)",
		},
		{
			name: "scale down: a deleting pod leaves, unreachable ones first",
			w: world{self: "kdnsd-0", replicas: 3, servers: append(three, "kdnsd-3", "kdnsd-4"),
				pods: append(threePods, "kdnsd-4=ip-kdnsd-4+deleting"), up: append(three, "kdnsd-4")},
			want: "remove kdnsd-3 (scaled down to 3 replicas and its pod is gone)",
		},
		{
			name: "scale down waits for the pod to go",
			w: world{self: "kdnsd-0", replicas: 3, servers: append(three, "kdnsd-3"),
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3"), up: append(three, "kdnsd-3")},
		},
		{
			name: "wanted voters are never removed, however long they are down",
			w: world{self: "kdnsd-0", replicas: 3, servers: three, pods: threePods[:2], up: three[:2],
				down: map[string]time.Duration{"kdnsd-2": time.Hour}},
		},
		{
			name: "never the leader",
			w: world{self: "kdnsd-4", replicas: 3, servers: append(three, "kdnsd-3", "kdnsd-4"),
				pods: append(threePods, "kdnsd-3=ip-kdnsd-3", "kdnsd-4=ip-kdnsd-4+deleting"), up: append(three, "kdnsd-3")},
		},
		{
			// 3 of 5 reachable is a quorum; without kdnsd-4 (still up, being
			// deleted) 2 of 4 would not be.
			name: "no removal that leaves the reachable voters a minority",
			w: world{self: "kdnsd-0", replicas: 4, servers: append(three, "kdnsd-3", "kdnsd-4"),
				pods: []string{"kdnsd-0=ip-kdnsd-0", "kdnsd-1=ip-kdnsd-1", "kdnsd-2=ip-kdnsd-2", "kdnsd-3=ip-kdnsd-3", "kdnsd-4=ip-kdnsd-4+deleting"},
				up:   []string{"kdnsd-0", "kdnsd-1", "kdnsd-4"}},
			note: "not removing kdnsd-4 (scaled down to 4 replicas and its pod is being deleted): only 2 of the 4 voters left would be reachable",
		},
		{
			name: "dead unwanted server removed after the timeout",
			w: world{self: "kdnsd-0", replicas: 3, servers: append(three, "old"), pods: threePods, up: three,
				down: map[string]time.Duration{"old": 6 * time.Minute}},
			want: "remove old (unreachable for 6m0s and not wanted)",
		},
		{
			name: "dead unwanted server kept before the timeout",
			w: world{self: "kdnsd-0", replicas: 3, servers: append(three, "old"), pods: threePods, up: three,
				down: map[string]time.Duration{"old": time.Minute}},
			note: "old is not wanted and unreachable since",
		},
		{
			name: "read replica whose pod is gone removed after the timeout",
			w: world{self: "kdnsd-0", replicas: 3, servers: append(three, "replica-0/nonvoter"), pods: threePods, up: three,
				down: map[string]time.Duration{"replica-0": 10 * time.Minute}},
			want: "remove replica-0 (unreachable for 10m0s and not wanted)",
		},
		{
			name: "StatefulSet unknown: no adds, no scale-down removals",
			w: world{self: "kdnsd-0", replicas: -1, servers: append(three, "kdnsd-4"),
				pods: append(threePods, "kdnsd-5=ip-kdnsd-5"), up: three, down: map[string]time.Duration{"kdnsd-4": time.Hour}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			act, pending, notes := plan(tc.w.input())
			got := ""
			if act != nil {
				got = act.String()
			}
			if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
				t.Errorf("action %q, want %q", got, tc.want)
			}
			if pending != tc.pending {
				t.Errorf("pending %v, want %v", pending, tc.pending)
			}
			if tc.note != "" && !strings.Contains(strings.Join(notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", notes, tc.note)
			}
		})
	}
}

func TestOrdinal(t *testing.T) {
	for name, want := range map[string]int{"kdnsd-0": 0, "kdnsd-12": 12, "kdnsd-01": -1, "kdnsd-": -1, "kdnsd": -1,
		"kdnsd-x": -1, "kdnsd-+1": -1, "kdnsd-replica-0": -1, "other-1": -1, "kdnsdx-1": -1} {
		got, ok := ordinal(name, "kdnsd")
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("ordinal(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	client := kubeclienttest.FromClientset(fake.NewClientset())
	base := func() Config {
		return Config{Client: client, Namespace: "kube-system", Selector: "app=kdnsd", StatefulSet: "kdnsd",
			RaftPort: 7000, StatusPort: 8080, Self: "kdnsd-0", Voter: true}
	}
	m, err := New(base())
	if err != nil {
		t.Fatal(err)
	}
	if c := m.cfg; c.BootstrapExpect != 3 || c.DeadServerTimeout != 5*time.Minute || c.Interval != 5*time.Second || c.Probe == nil {
		t.Errorf("defaults: %+v", c)
	}
	for name, mod := range map[string]func(*Config){
		"no client":      func(c *Config) { c.Client = nil },
		"no namespace":   func(c *Config) { c.Namespace = "" },
		"no selector":    func(c *Config) { c.Selector = "" },
		"bad selector":   func(c *Config) { c.Selector = "a in (" },
		"no sts":         func(c *Config) { c.StatefulSet = "" },
		"no self":        func(c *Config) { c.Self = "" },
		"no raft port":   func(c *Config) { c.RaftPort = 0 },
		"no status port": func(c *Config) { c.StatusPort = 0 },
		"negative":       func(c *Config) { c.BootstrapExpect = -1 },
	} {
		c := base()
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// statusWithState is a probed status with or without a Raft configuration.
func statusWithState(has bool) raftnode.Status {
	if !has {
		return raftnode.Status{}
	}
	return raftnode.Status{Servers: []raftnode.ServerInfo{{ID: "x"}}}
}
