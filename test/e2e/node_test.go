//go:build e2e

package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/test/e2e/node"
)

// apiPoll is how often a condition read from the API server is checked:
// often next to a pod start, rare enough not to load the 2-core node.
const apiPoll = 200 * time.Millisecond

// kubectl runs kubectl against the node with the admin's kubeconfig and
// returns its standard output; the error holds its standard error.
func kubectl(ctx context.Context, args ...string) (string, error) {
	return nodeEnv.Kubectl(ctx, args...)
}

// mustKubectl is kubectl that fails the test on error.
func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// adminClient is a client-go clientset with the admin's rights.
func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := nodeEnv.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// eventually fails the test unless cond holds within timeout (cond is
// checked every apiPoll; an error from it counts as "not yet" and is shown
// if time runs out).
func eventually(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), apiPoll, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last error: %v)", what, timeout, last)
	}
}

// runNodeScript runs node.sh (apiserver stop|start).
func runNodeScript(t *testing.T, args ...string) {
	t.Helper()
	if err := nodeEnv.RunScript(t.Context(), args...); err != nil {
		t.Fatal(err)
	}
}

// killKdnsd sends sig to pod's kdnsd process and returns the process.
func killKdnsd(t *testing.T, pod string, sig syscall.Signal) node.Process {
	t.Helper()
	p, ok := node.FindKdnsd(pod)
	if !ok {
		t.Fatalf("no kdnsd process of pod %s on the node", pod)
	}
	if err := syscall.Kill(p.PID, sig); err != nil {
		t.Fatalf("kill %d (%s): %v", p.PID, pod, err)
	}
	return p
}
