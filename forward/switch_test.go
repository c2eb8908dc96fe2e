package forward

import (
	"context"
	"slices"
	"testing"
)

// TestSwitch: queries go to the Forwarder in force; Set replaces it at once,
// starts the new one and stops the old one's background work.
func TestSwitch(t *testing.T) {
	one := startServer(t, answer(60, "192.0.2.1"))
	two := startServer(t, answer(60, "192.0.2.2"))
	f1 := newForwarder(t, Config{Upstreams: []string{one.addr}}, nil)
	f2 := newForwarder(t, Config{Upstreams: []string{two.addr}, CacheSize: -1}, nil)
	sw := NewSwitch(f1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sw.Start(ctx)
	addr := startServer(t, sw.ServeDNS).addr

	if ips, _ := aRecords(exchange(t, query("a.example.", 1), addr, "udp")); !slices.Equal(ips, []string{"192.0.2.1"}) {
		t.Fatalf("first forwarder: %v", ips)
	}
	sw.Set(f2)
	if sw.Current() != f2 || !f2.started.Load() {
		t.Fatal("the new forwarder is not in force and started")
	}
	if f1.loop.ctx.Err() == nil {
		t.Error("the replaced forwarder's background work goes on")
	}
	// The same name, cached by the first forwarder: the second one asks its
	// own upstream.
	if ips, _ := aRecords(exchange(t, query("a.example.", 1), addr, "udp")); !slices.Equal(ips, []string{"192.0.2.2"}) {
		t.Fatalf("second forwarder: %v", ips)
	}
}
