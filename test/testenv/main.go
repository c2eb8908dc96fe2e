package testenv

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shared is the package's one Env, started by the first Get and stopped when
// Run ends.
var shared struct {
	mu      sync.Mutex
	running bool               // Run is running the tests
	ctx     context.Context    // ends on SIGINT or SIGTERM
	env     *Env               // nil until the first Get starts it
	err     error              // why it could not start: later Gets fail at once
	stopped bool               // Run has ended; Get fails
	cancel  context.CancelFunc // of ctx
}

// Main is the TestMain of a package whose tests use Get:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// It runs the tests, stops the Env if one was started, and exits with the
// tests' status. A SIGINT or SIGTERM stops the Env and exits. Should the test
// binary die without reaching the end (a panic in a test, a -timeout), the
// children still die with it and the Env's directory is still removed (see
// the package comment).
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the os.Exit, for a TestMain with cleanup of its own:
// it returns the exit status. (A SIGINT or SIGTERM while tests run still
// stops the Env and exits at once.)
func Run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	shared.mu.Lock()
	shared.running, shared.ctx, shared.cancel = true, ctx, cancel
	shared.mu.Unlock()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		// Abort a Start in progress (it then cleans up after itself), wait
		// for it to give up the lock, and stop what runs.
		cancel()
		shared.mu.Lock()
		if shared.env != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v: stopping etcd and kube-apiserver\n", s)
			shared.env.Stop()
		}
		os.Exit(1)
	}()

	code := m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.stopped = true
	cancel()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop: %v\n", err)
		}
	}
	return code
}

// Get returns the package's Env, starting it if no test has yet: tests that
// never call Get never start etcd and kube-apiserver. It fails the test if
// the Env cannot start (and so does every later Get, at once), and unless
// the package's TestMain is Main or calls Run, which stop the Env once all
// tests are done.
func Get(t testing.TB) *Env {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	switch {
	case !shared.running:
		t.Fatal("testenv.Get: the package's TestMain must call testenv.Main or testenv.Run")
	case shared.stopped:
		t.Fatal("testenv.Get after the package's tests ended")
	case shared.env == nil && shared.err == nil:
		e, err := Start(shared.ctx)
		if err != nil {
			shared.err = err
			break
		}
		shared.env = e
		fmt.Fprintf(os.Stderr, "testenv: kube-apiserver at %s ready in %v (dir %s)\n",
			e.Host, e.StartupTime.Round(10*time.Millisecond), e.Dir)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.env
}
