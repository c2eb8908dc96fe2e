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
)

// maxStatusBytes bounds how much of a /status answer is read.
const maxStatusBytes = 1 << 20

// HTTPProbe returns the default probe: GET http://<ip>:<port>/status, the
// JSON status page kdnsd serves (cmd/kdnsd), whose "servers" field is the
// pod's Raft configuration: a non-empty list means it has state. The page's
// "id" must be the pod's name, so that a pod IP reused by another kdnsd pod
// is not taken for this one; an answer without a "servers" field is not a
// kdnsd status page and is an error. No HTTP proxy is used.
func HTTPProbe(port int) ProbeFunc {
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context, name, ip string) (bool, error) {
		url := "http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/status"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		var page map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(&page); err != nil {
			return false, fmt.Errorf("GET %s: %w", url, err)
		}
		if raw, ok := page["id"]; ok {
			var id string
			if err := json.Unmarshal(raw, &id); err != nil {
				return false, fmt.Errorf("GET %s: id: %w", url, err)
			}
			if id != "" && id != name {
				return false, fmt.Errorf("GET %s: answered by %q, not %q", url, id, name)
			}
		}
		raw, ok := page["servers"]
		if !ok {
			return false, fmt.Errorf("GET %s: no \"servers\" field: not a kdnsd status page", url)
		}
		var servers []json.RawMessage
		if err := json.Unmarshal(raw, &servers); err != nil {
			return false, fmt.Errorf("GET %s: servers: %w", url, err)
		}
		return len(servers) > 0, nil
	}
}

// probeResult is one probe's answer.
type probeResult struct {
	hasState bool
	err      error
}

// probeAll probes the pods at once, each bounded by ProbeTimeout.
func (m *Membership) probeAll(ctx context.Context, pods []pod) map[string]probeResult {
	out := make(map[string]probeResult, len(pods))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
			defer cancel()
			has, err := m.cfg.Probe(pctx, p.name, p.ip)
			mu.Lock()
			out[p.name] = probeResult{has, err}
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
