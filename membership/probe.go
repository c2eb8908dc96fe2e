package membership

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kdnsd/kdnsd/raftnode"
)

// maxStatusBytes bounds how much of a /status answer is read.
const maxStatusBytes = 1 << 20

// HTTPProbe returns the default probe: GET http://<ip>:<port>/status, the
// JSON status page kdnsd serves (an admin.Status), of which it reads the
// raftnode.Status part.
// Its "servers" field is the pod's Raft configuration: a non-empty list means
// it has state. The page's "id" must be the pod's name, so that a pod IP
// reused by another kdnsd pod is not taken for this one; an answer without a
// "servers" field is not a kdnsd status page and is an error. No HTTP proxy
// is used.
func HTTPProbe(port int) ProbeFunc {
	return func(ctx context.Context, name, ip string) (raftnode.Status, error) {
		return fetchStatus(ctx, name, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
}

// statusClient reads peers' status pages: no proxy, no redirects, no
// kept-alive connections to pods that come and go.
var statusClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives: true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// fetchStatus GETs http://<addr>/status, which must be the page of the
// replica name (see HTTPProbe).
func fetchStatus(ctx context.Context, name, addr string) (raftnode.Status, error) {
	var st raftnode.Status
	url := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return st, fmt.Errorf("GET %s: %w", url, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return st, fmt.Errorf("GET %s: %w", url, err)
	}
	if _, ok := fields["servers"]; !ok {
		return st, fmt.Errorf("GET %s: no \"servers\" field: not a kdnsd status page", url)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("GET %s: %w", url, err)
	}
	if st.ID != "" && st.ID != name {
		return raftnode.Status{}, fmt.Errorf("GET %s: answered by %q, not %q", url, st.ID, name)
	}
	return st, nil
}

// probeResult is one probe's answer.
type probeResult struct {
	status raftnode.Status
	err    error
}

// hasState reports whether the probed replica has a Raft configuration.
func (r probeResult) hasState() bool { return len(r.status.Servers) > 0 }

// probeAll probes the pods at once, each bounded by ProbeTimeout.
func (m *Membership) probeAll(ctx context.Context, pods []pod) map[string]probeResult {
	targets := make(map[string]string, len(pods))
	for _, p := range pods {
		targets[p.name] = p.ip
	}
	return probeEach(ctx, m.cfg.ProbeTimeout, targets, m.cfg.Probe)
}

// probeEach asks every target (name → where ask finds it) at once, each
// bounded by timeout.
func probeEach(ctx context.Context, timeout time.Duration, targets map[string]string, ask ProbeFunc) map[string]probeResult {
	out := make(map[string]probeResult, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, where := range targets {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := ask(pctx, name, where)
			mu.Lock()
			out[name] = probeResult{st, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func sortedNames[T any](m map[string]T) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
