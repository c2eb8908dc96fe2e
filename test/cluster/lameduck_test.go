package cluster

import (
	"net/http"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestLameduck: on SIGTERM a replica turns unready at once but keeps
// answering DNS for --lameduck, so that a Service stops sending it queries
// before it goes (without it, queries in flight during a rollout are lost).
func TestLameduck(t *testing.T) {
	c := newCluster(t, 3)
	cs := admin(t)
	ns := namespace(t, cs)
	ip := serviceOnAll(t, c, cs, ns, "web")
	r := c.Replicas[2]
	r.Kill()
	const lameduck = 10 * time.Second
	r.ExtraArgs = []string{"--lameduck", lameduck.String()}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, r.ID+" ready", 20*time.Second, func() bool { return readyz(r) == http.StatusOK && answersA(r, fqdn("web", ns), ip) })

	stopped := make(chan struct{})
	signalled := time.Now() // no later than the SIGTERM
	go func() {
		r.Stop()
		close(stopped)
	}()
	// It stays up, unready, for the whole lameduck: the window to see it in.
	wait.For(t, r.ID+" unready after SIGTERM", lameduck, func() bool { return readyz(r) == http.StatusServiceUnavailable })
	if !answersA(r, fqdn("web", ns), ip) {
		t.Fatal("no longer answering DNS as soon as it is unready")
	}
	<-stopped
	if d := time.Since(signalled); d < lameduck {
		t.Fatalf("exited %s after SIGTERM, before the end of its %s lameduck", d, lameduck)
	}
}
