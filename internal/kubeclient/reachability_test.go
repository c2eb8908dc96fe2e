package kubeclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestReachability drives a tracked transport against a real loopback
// server and a closed port: a failure starts the outage, later failures
// keep its start, any HTTP answer (a 403 too) ends it, and a request its
// caller cancelled tells nothing.
func TestReachability(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/forbidden" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close() // nothing listens there now: connection refused

	r := &Reachability{}
	client := &http.Client{Transport: r.WrapTransport(http.DefaultTransport.(*http.Transport).Clone())}
	get := func(ctx context.Context, url string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	var firstFailure time.Time
	for _, step := range []struct {
		name        string
		ctx         context.Context
		url         string
		unreachable bool
		sameSince   bool // the outage's start is the first failure's
	}{
		{"answered", context.Background(), srv.URL, false, false},
		{"refused", context.Background(), closed, true, false},
		{"refused again", context.Background(), closed, true, true},
		{"given up by its caller", cancelled, srv.URL, true, true},
		{"forbidden is an answer", context.Background(), srv.URL + "/forbidden", false, false},
		{"refused after the answer", context.Background(), closed, true, false},
		{"answered again", context.Background(), srv.URL, false, false},
	} {
		before := time.Now()
		get(step.ctx, step.url)
		since, err := r.Unreachable()
		if got := !since.IsZero(); got != step.unreachable {
			t.Fatalf("%s: unreachable = %v (since %v, err %v), want %v", step.name, got, since, err, step.unreachable)
		}
		if !step.unreachable {
			if err != nil {
				t.Fatalf("%s: err %v while reachable", step.name, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: no error recorded", step.name)
		}
		if step.sameSince {
			if !since.Equal(firstFailure) {
				t.Fatalf("%s: outage since %v, want the first failure's %v", step.name, since, firstFailure)
			}
		} else {
			if since.Before(before) {
				t.Fatalf("%s: outage since %v, before this request (%v)", step.name, since, before)
			}
			firstFailure = since
		}
	}
}
