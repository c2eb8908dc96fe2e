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
	r.ExtraArgs = []string{"--lameduck", "10s"}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, r.ID+" ready", 20*time.Second, func() bool { return readyz(r) == http.StatusOK && answersA(r, fqdn("web", ns), ip) })

	stopped := make(chan struct{})
	go func() {
		r.Stop()
		close(stopped)
	}()
	// Well inside the 10s lameduck even on a loaded machine.
	wait.For(t, r.ID+" unready after SIGTERM", 8*time.Second, func() bool { return readyz(r) == http.StatusServiceUnavailable })
	unready := time.Now()
	if !answersA(r, fqdn("web", ns), ip) {
		t.Fatal("no longer answering DNS as soon as it is unready")
	}
	<-stopped
	if d := time.Since(unready); d < 2*time.Second {
		t.Fatalf("stopped %s after turning unready, want the rest of the 10s lameduck", d)
	}
}
