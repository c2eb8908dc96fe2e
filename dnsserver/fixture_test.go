package dnsserver_test

import (
	"testing"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/resolver"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// newTestResolver returns the Handler the servers are tested with: a
// resolver of cfg serving resolvertest's fixture.
func newTestResolver(t testing.TB, cfg resolver.Config) *resolver.Resolver {
	t.Helper()
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svcs, eps := resolvertest.Fixture()
	r.Update(fsm.NewView(1, svcs, eps))
	return r
}
