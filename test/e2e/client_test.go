//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// clientNamespace is where the DNS client pods run: an ordinary namespace,
// whose search path (default.svc.cluster.local …) kubelet writes.
const clientNamespace = "default"

// slowAnswer is the goal for a lookup through the ClusterIP: an answer
// slower than this counts as slow.
const slowAnswer = time.Second

// answer is one lookup the DNS client pod recorded (images/dnsclient).
type answer struct {
	Name    string   `json:"name"`
	Start   int64    `json:"start_unix_nano"`
	Latency int64    `json:"latency_ns"`
	Addrs   []string `json:"addrs,omitempty"`
	Err     string   `json:"err,omitempty"`
}

func (a answer) start() time.Time        { return time.Unix(0, a.Start) }
func (a answer) latency() time.Duration  { return time.Duration(a.Latency) }
func (a answer) resolves(ip string) bool { return a.Err == "" && slices.Contains(a.Addrs, ip) }
func (a answer) end() time.Time          { return a.start().Add(a.latency()) }
func (a answer) String() string {
	return fmt.Sprintf("%s %s after %s: %v %s", a.start().Format("15:04:05.000"), a.Name, a.latency(), a.Addrs, a.Err)
}

// dnsClient is one running DNS client pod.
type dnsClient struct {
	name string
	ip   string
	read int // answers fetched so far
	all  []answer
}

// startDNSClient runs a DNS client pod that looks names up, in turn, at
// rate lookups per second, and waits until it answers over HTTP. The pod is
// deleted when the test ends.
func startDNSClient(t *testing.T, cs kubernetes.Interface, name string, rate int, names ...string) *dnsClient {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "kdnsd-e2e-dnsclient"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name:            "dnsclient",
				Image:           "kdnsd-e2e/dnsclient:e2e",
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"-names", strings.Join(names, ","), "-rate", fmt.Sprint(rate)},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(clientNamespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cs.CoreV1().Pods(clientNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	})
	c := &dnsClient{name: name}
	eventually(t, "DNS client pod "+name+" serving", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(clientNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || p.Status.PodIP == "" {
			return false, err
		}
		c.ip = p.Status.PodIP
		return c.fetch(ctx) == nil, nil
	})
	return c
}

// fetch reads the answers recorded since the last fetch.
func (c *dnsClient) fetch(ctx context.Context) error {
	url := fmt.Sprintf("http://%s/answers?from=%d", net.JoinHostPort(c.ip, "8080"), c.read)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return err
		}
		c.all = append(c.all, a)
		c.read++
	}
	return sc.Err()
}

// answersUntil waits until the client recorded an answer to a lookup
// started after t0 (lookups still running then are in flight for at most
// their timeout), and returns every answer so far.
func (c *dnsClient) answersUntil(t *testing.T, t0 time.Time) []answer {
	t.Helper()
	eventually(t, "DNS client answers after "+t0.Format("15:04:05.000"), time.Minute, func(ctx context.Context) (bool, error) {
		if err := c.fetch(ctx); err != nil {
			return false, err
		}
		// every lookup started before t0 has ended: none is older than the
		// client's timeout (10 s) and the newest started after t0+10s
		return len(c.all) > 0 && c.all[len(c.all)-1].start().After(t0.Add(11*time.Second)), nil
	})
	return c.all
}

// loadSummary is what a DNS client saw in a window of time.
type loadSummary struct {
	lookups, failed, slow int
	rate                  float64 // lookups per second
	p50, p99, max         time.Duration
	examples              []string // a few failed or slow lookups
}

func (s loadSummary) String() string {
	return fmt.Sprintf("%d lookups (%.0f/s): %d failed, %d over %s; latency p50 %s, p99 %s, max %s",
		s.lookups, s.rate, s.failed, s.slow, slowAnswer, s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(time.Millisecond))
}

// summarize covers the lookups started in [from, to).
func summarize(answers []answer, from, to time.Time) loadSummary {
	var s loadSummary
	var lat []time.Duration
	for _, a := range answers {
		if a.start().Before(from) || !a.start().Before(to) {
			continue
		}
		s.lookups++
		lat = append(lat, a.latency())
		bad := ""
		if a.Err != "" {
			s.failed++
			bad = "failed"
		} else if a.latency() > slowAnswer {
			s.slow++
			bad = "slow"
		}
		if bad != "" && len(s.examples) < 5 {
			s.examples = append(s.examples, bad+": "+a.String())
		}
	}
	if len(lat) == 0 {
		return s
	}
	slices.Sort(lat)
	s.rate = float64(s.lookups) / to.Sub(from).Seconds()
	s.p50 = lat[len(lat)/2]
	s.p99 = lat[len(lat)*99/100]
	s.max = lat[len(lat)-1]
	return s
}

// reportLoad records the figures of a window of load. Failed and slow
// lookups are reported, not failed on: the goal is none, but a crash (a
// killed container) loses the queries in flight whatever kdnsd does, and how
// many a planned stop loses depends on how fast kube-proxy follows on this
// machine. What kdnsd itself must do (drain on SIGTERM) is asserted by
// test/cluster's TestLameduck. A window with no lookups at all fails.
func reportLoad(t *testing.T, what string, answers []answer, from, to time.Time) {
	t.Helper()
	s := summarize(answers, from, to)
	figure(t, what, "%s", s)
	for _, e := range s.examples {
		t.Log("  " + e)
	}
	if s.lookups == 0 {
		t.Errorf("%s: no lookups recorded between %s and %s", what, from, to)
	}
}
