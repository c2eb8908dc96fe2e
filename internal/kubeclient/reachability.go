package kubeclient

import (
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Reachability tells whether the API server answered the last request made
// through the transports it wraps. client-go's reflector retries a watch
// refused at the TCP level inside its own backoff (up to a minute) without
// telling the watch error handler: when an API server shuts down gracefully
// it closes the watches cleanly, every informer re-watches, is refused, and
// nothing but the transport sees the outage. Wrap a client's transport
// (rest.Config.Wrap) to see it.
type Reachability struct {
	mu    sync.Mutex
	since time.Time // first failure since the last answer; zero while answered
	err   error
}

// WrapTransport returns rt, recording the outcome of each request: any HTTP
// response counts as an answer; an error counts as a failure unless the
// request's own context ended (the caller gave up, the server did not fail).
func (r *Reachability) WrapTransport(rt http.RoundTripper) http.RoundTripper {
	return &reachabilityTransport{r: r, next: rt}
}

type reachabilityTransport struct {
	r    *Reachability
	next http.RoundTripper
}

func (t *reachabilityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	switch {
	case err == nil:
		t.r.mu.Lock()
		t.r.since, t.r.err = time.Time{}, nil
		t.r.mu.Unlock()
	case req.Context().Err() == nil:
		t.r.mu.Lock()
		if t.r.since.IsZero() {
			t.r.since = time.Now()
		}
		t.r.err = err
		t.r.mu.Unlock()
	}
	return resp, err
}

// WrappedRoundTripper lets client-go reach the transport underneath (to
// close its idle connections, for one).
func (t *reachabilityTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// Unreachable returns since when requests have failed with no answer in
// between, and the last failure; a zero time when the last request was
// answered (or none was made).
func (r *Reachability) Unreachable() (since time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.since, r.err
}

// NewTracked returns a client of its own for cfg (a copy of it: its
// connections are not shared with other clients, whose answers would hide
// this one's failures) and the Reachability of its requests.
func NewTracked(cfg *rest.Config) (Client, *Reachability, error) {
	r := &Reachability{}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(r.WrapTransport)
	client, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return client, r, nil
}
