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

// Main is a TestMain that runs the package's tests against one Env:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
// It starts the Env (exiting with status 1 and the reason if that fails),
// stores it in *env, runs the tests, stops the Env and exits with the tests'
// status. A SIGINT or SIGTERM stops the Env and exits. Should the test binary
// die without reaching the end (a panic in a test, a -timeout), the children
// still die with it and the Env's directory is still removed (see the
// package comment).
func Main(m *testing.M, env **Env) {
	os.Exit(Run(m, env))
}

// Run is Main without the os.Exit, for a TestMain with cleanup of its own:
// it returns the exit status. (A SIGINT or SIGTERM while tests run still
// stops the Env and exits at once.)
func Run(m *testing.M, env **Env) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu          sync.Mutex
		running     *Env
		interrupted bool
	)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		cancel() // aborts a Start in progress, which then cleans up itself
		mu.Lock()
		interrupted = true
		e := running
		mu.Unlock()
		if e != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v: stopping etcd and kube-apiserver\n", s)
			e.Stop()
			os.Exit(1)
		}
	}()

	e, err := Start(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return 1
	}
	defer e.Stop()
	mu.Lock()
	stop := interrupted
	running = e
	mu.Unlock()
	if stop {
		fmt.Fprintln(os.Stderr, "testenv: interrupted")
		return 1
	}
	fmt.Fprintf(os.Stderr, "testenv: kube-apiserver at %s ready in %v (dir %s)\n",
		e.Host, e.StartupTime.Round(10*time.Millisecond), e.Dir)
	*env = e
	return m.Run()
}
