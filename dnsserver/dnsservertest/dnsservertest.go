// Package dnsservertest starts DNS servers on loopback sockets, for tests.
package dnsservertest

import (
	"context"
	"testing"

	"github.com/kdnsd/kdnsd/dnsserver"
)

// Start serves cfg on 127.0.0.1, port picked for both UDP and TCP, with
// udpSockets UDP sockets, until the test ends, and returns the address.
func Start(t testing.TB, cfg dnsserver.Config, udpSockets int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	socks, err := dnsserver.Listen(ctx, "127.0.0.1:0", udpSockets)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- dnsserver.Serve(ctx, socks, cfg, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return socks.TCP.Addr().String()
}
