package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// watches is what the API server's own /metrics say about the watches it
// serves: the long-running WATCH requests in flight
// (apiserver_longrunning_requests{verb="WATCH"}), and the watchers
// registered with its watch cache (apiserver_registered_watchers).
type watches struct {
	requests, registered int
}

func (w watches) minus(o watches) watches {
	return watches{w.requests - o.requests, w.registered - o.registered}
}

// readWatches reads both metrics, summed over all resources, from the API
// server of cs.
func readWatches(ctx context.Context, cs kubernetes.Interface) (watches, error) {
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return watches{}, fmt.Errorf("API server /metrics: %w", err)
	}
	return parseWatches(body)
}

// parseWatches reads both metrics from the Prometheus text format.
func parseWatches(body []byte) (watches, error) {
	var w watches
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var into *int
		switch {
		case strings.HasPrefix(line, "apiserver_longrunning_requests{") && strings.Contains(line, `verb="WATCH"`):
			into = &w.requests
		case strings.HasPrefix(line, "apiserver_registered_watchers{"):
			into = &w.registered
		default:
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return watches{}, fmt.Errorf("API server /metrics: %q: %w", line, err)
		}
		*into += int(v)
	}
	return w, sc.Err()
}
