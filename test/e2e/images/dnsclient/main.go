// Command dnsclient is the e2e's DNS client pod: it resolves names the way
// an ordinary Go program in a pod does (the pure Go resolver reading the
// pod's /etc/resolv.conf that kubelet wrote: kube-dns ClusterIP, search path,
// ndots:5) at a steady rate, and records every answer with its time. The test
// reads the records back over HTTP.
//
//	GET /answers?from=N   records N, N+1, … as JSON lines
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// answer is one lookup as the test reads it.
type answer struct {
	Name    string   `json:"name"`
	Start   int64    `json:"start_unix_nano"`
	Latency int64    `json:"latency_ns"`
	Addrs   []string `json:"addrs,omitempty"`
	Err     string   `json:"err,omitempty"`
}

type recorder struct {
	mu      sync.Mutex
	answers []answer
}

func (r *recorder) add(a answer) {
	r.mu.Lock()
	r.answers = append(r.answers, a)
	r.mu.Unlock()
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	from, _ := strconv.Atoi(req.URL.Query().Get("from"))
	r.mu.Lock()
	var batch []answer
	if from >= 0 && from < len(r.answers) {
		batch = r.answers[from:len(r.answers):len(r.answers)] // appends never touch it
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/jsonl")
	enc := json.NewEncoder(w)
	for _, a := range batch {
		if enc.Encode(a) != nil {
			return
		}
	}
}

func main() {
	names := flag.String("names", "kubernetes.default", "comma-separated names to resolve in turn")
	rate := flag.Float64("rate", 10, "lookups started per second")
	timeout := flag.Duration("timeout", 10*time.Second, "give up on one lookup after this long")
	listen := flag.String("listen", ":8080", "address of the HTTP server the test reads answers from")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	rec := &recorder{}
	go func() {
		err := http.ListenAndServe(*listen, rec)
		log.Error("http server stopped", "err", err)
		os.Exit(1)
	}()

	resolver := &net.Resolver{} // pure Go: CGO is off in the image
	list := strings.Split(*names, ",")
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	log.Info("resolving", "names", list, "rate", *rate)
	for i := 0; ; i++ {
		<-tick.C
		name := list[i%len(list)]
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			start := time.Now()
			addrs, err := resolver.LookupHost(ctx, name)
			a := answer{Name: name, Start: start.UnixNano(), Latency: int64(time.Since(start)), Addrs: addrs}
			if err != nil {
				a.Err = err.Error()
			}
			rec.add(a)
		}()
	}
}
