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

// readWatches is the number of watches the API server of cs serves, from
// its own /metrics: the long-running WATCH requests in flight,
// apiserver_longrunning_requests{verb="WATCH"}, summed over all resources.
// (apiserver_registered_watchers read 0 throughout on kube-apiserver 1.37.)
func readWatches(ctx context.Context, cs kubernetes.Interface) (int, error) {
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("API server /metrics: %w", err)
	}
	return parseWatches(body)
}

// parseWatches reads the metric from the Prometheus text format.
func parseWatches(body []byte) (int, error) {
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("API server /metrics: %q: %w", line, err)
		}
		total += int(v)
	}
	return total, sc.Err()
}
