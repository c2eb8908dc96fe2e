//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/test/e2e/node"
)

const (
	kdnsdNamespace = node.Namespace
	kdnsdSelector  = node.Selector
	clusterDNSIP   = "10.96.0.10" // kube-dns in deploy/statefulset, kubelet's clusterDNS
)

// installKdnsd installs deploy/statefulset the way an operator does
// (node.Env.Install).
func installKdnsd(t *testing.T) {
	t.Helper()
	out, err := nodeEnv.Install(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply -k deploy/statefulset:\n%s", out)
}

// kdnsdPods lists kdnsd's pods by name.
func kdnsdPods(ctx context.Context, cs kubernetes.Interface) (map[string]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods(kdnsdNamespace).List(ctx, metav1.ListOptions{LabelSelector: kdnsdSelector})
	if err != nil {
		return nil, err
	}
	pods := make(map[string]corev1.Pod, len(list.Items))
	for _, p := range list.Items {
		pods[p.Name] = p
	}
	return pods, nil
}

func podReady(p corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// replicaNames is kdnsd-0 … kdnsd-(n-1).
func replicaNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("kdnsd-%d", i)
	}
	return names
}

// raftStatus is a replica's GET /status on :8080.
type raftStatus admin.Status

// voters is the sorted IDs of the voters in s's Raft configuration.
func (s raftStatus) voters() []string {
	var ids []string
	for _, srv := range s.Servers {
		if srv.Voter {
			ids = append(ids, srv.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// addressOf is the Raft address s's configuration holds for id.
func (s raftStatus) addressOf(id string) string {
	for _, srv := range s.Servers {
		if srv.ID == id {
			return srv.Address
		}
	}
	return ""
}

var statusClient = &http.Client{Timeout: time.Second}

func replicaStatus(ctx context.Context, podIP string) (raftStatus, error) {
	var st raftStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(podIP, "8080")+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// clusterSettled is the condition the scenarios wait for after a disruption:
// exactly the pods of names exist and are Ready, every one of them reports
// the same leader and a Raft configuration of exactly names as voters at
// their current pod IPs, and each serves the records the leader had
// applied when asked.
func clusterSettled(cs kubernetes.Interface, names []string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		pods, err := kdnsdPods(ctx, cs)
		if err != nil {
			return false, err
		}
		if len(pods) != len(names) {
			return false, fmt.Errorf("%d kdnsd pods, want %d", len(pods), len(names))
		}
		var leader raftStatus
		statuses := map[string]raftStatus{}
		for _, name := range names {
			p, ok := pods[name]
			if !ok || !podReady(p) {
				return false, fmt.Errorf("%s not ready", name)
			}
			st, err := replicaStatus(ctx, p.Status.PodIP)
			if err != nil {
				return false, err
			}
			statuses[name] = st
			if st.State == "Leader" {
				leader = st
			}
		}
		if leader.ID == "" {
			return false, fmt.Errorf("no leader")
		}
		for _, name := range names {
			st := statuses[name]
			if st.LeaderID != leader.ID {
				return false, fmt.Errorf("%s follows %q, leader is %s", name, st.LeaderID, leader.ID)
			}
			if !slices.Equal(st.voters(), names) {
				return false, fmt.Errorf("%s: voters %v, want %v", name, st.voters(), names)
			}
			if want := net.JoinHostPort(pods[name].Status.PodIP, "7000"); leader.addressOf(name) != want {
				return false, fmt.Errorf("leader has %s at %s, pod is at %s", name, leader.addressOf(name), want)
			}
			// (the store's index, not Raft's commit: configuration
			// entries are committed but never reach the store)
			if st.ServedIndex < leader.AppliedIndex {
				return false, fmt.Errorf("%s serves index %d < leader's applied %d", name, st.ServedIndex, leader.AppliedIndex)
			}
		}
		return true, nil
	}
}

// leaderOf returns the name of the replica that reports itself leader.
func leaderOf(t *testing.T, cs kubernetes.Interface) (string, map[string]corev1.Pod) {
	t.Helper()
	var leader string
	var pods map[string]corev1.Pod
	eventually(t, "a kdnsd leader", time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		if pods, err = kdnsdPods(ctx, cs); err != nil {
			return false, err
		}
		for name, p := range pods {
			if st, err := replicaStatus(ctx, p.Status.PodIP); err == nil && st.State == "Leader" {
				leader = name
				return true, nil
			}
		}
		return false, nil
	})
	return leader, pods
}

// queryPod asks the kdnsd at podIP, directly, for name's A record.
func queryPod(podIP, name string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, net.JoinHostPort(podIP, "53"))
	return r, err
}

// answersA reports whether r is a NOERROR answer holding exactly ip.
func answersA(r *dns.Msg, ip string) bool {
	if r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return false
	}
	a, ok := r.Answer[0].(*dns.A)
	return ok && a.A.String() == ip
}

// leaderMonitor polls every kdnsd pod's /status and records each change of
// leader (as the replicas report it) and each span with no leader at all.
// It keeps the pods' IPs from the last successful API list, so it goes on
// while the API server is down.
type leaderMonitor struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	leaders     []string // "kdnsd-1 (term 4)", in the order they appeared
	leaderless  time.Duration
	longestGap  time.Duration
	gapStart    time.Time
	lastLeaders string
}

func startLeaderMonitor(cs kubernetes.Interface) *leaderMonitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &leaderMonitor{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		ips := map[string]string{}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if pods, err := kdnsdPods(ctx, cs); err == nil {
				clear(ips)
				for name, p := range pods {
					if p.Status.PodIP != "" {
						ips[name] = p.Status.PodIP
					}
				}
			}
			var current []string
			for _, ip := range ips {
				st, err := replicaStatus(ctx, ip)
				if err == nil && st.State == "Leader" {
					current = append(current, fmt.Sprintf("%s (term %d)", st.ID, st.Term))
				}
			}
			slices.Sort(current)
			m.observe(time.Now(), strings.Join(current, " + "))
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *leaderMonitor) observe(now time.Time, leaders string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if leaders == "" {
		if m.gapStart.IsZero() {
			m.gapStart = now
		}
		return
	}
	if !m.gapStart.IsZero() {
		gap := now.Sub(m.gapStart)
		m.leaderless += gap
		m.longestGap = max(m.longestGap, gap)
		m.gapStart = time.Time{}
	}
	if leaders != m.lastLeaders {
		m.leaders = append(m.leaders, leaders)
		m.lastLeaders = leaders
	}
}

// stop ends the monitor and reports the leaders seen in order, the number
// of changes, and the time without a leader (total and longest span).
func (m *leaderMonitor) stop() (leaders []string, changes int, leaderless, longest time.Duration) {
	m.cancel()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.gapStart.IsZero() { // a leaderless span still open
		gap := time.Since(m.gapStart)
		m.leaderless += gap
		m.longestGap = max(m.longestGap, gap)
	}
	return m.leaders, max(len(m.leaders)-1, 0), m.leaderless, m.longestGap
}

// replicaProbe asks one replica, at its pod IP, for a name every 10 ms and
// keeps what it answered in order: it shows what a replica that is being
// stopped answers, and for how long, before it goes silent.
type replicaProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	runs   []string // "NOERROR×120", "SERVFAIL×2", "timeout×40", …
	counts []int
}

func startReplicaProbe(podIP, name, wantIP string) *replicaProbe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &replicaProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			r, err := queryPod(podIP, name)
			var outcome string
			switch {
			case err != nil:
				outcome = "no answer"
			case answersA(r, wantIP):
				outcome = "right answer"
			default:
				outcome = dns.RcodeToString[r.Rcode] + fmt.Sprintf(" with %d answers", len(r.Answer))
			}
			if n := len(p.runs); n > 0 && p.runs[n-1] == outcome {
				p.counts[n-1]++
			} else {
				p.runs = append(p.runs, outcome)
				p.counts = append(p.counts, 1)
			}
			if err == nil {
				time.Sleep(10 * time.Millisecond) // a query rate, not a wait
			}
		}
	}()
	return p
}

// stop ends the probe and returns its answers run-length encoded, e.g.
// "right answer ×300 → SERVFAIL with 0 answers ×2 → no answer ×40".
func (p *replicaProbe) stop() string {
	p.cancel()
	<-p.done
	parts := make([]string, len(p.runs))
	for i, r := range p.runs {
		parts[i] = fmt.Sprintf("%s ×%d", r, p.counts[i])
	}
	return strings.Join(parts, " → ")
}
