//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// apiPoll is how often a condition read from the API server is checked:
// often next to a pod start, rare enough not to load the 2-core node.
const apiPoll = 200 * time.Millisecond

// kubectl runs kubectl against the node with the admin's kubeconfig and
// returns its standard output; the error holds its standard error.
func kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out), nil
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
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 50, 100
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
	cmd := exec.CommandContext(t.Context(), "bash", append([]string{nodeScript}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// kdnsdProcess is the kdnsd server process of one pod on the node, found by
// the POD_NAME in its environment.
type kdnsdProcess struct {
	pid     int
	started time.Time // to /proc's 10 ms resolution
}

// findKdnsd returns the running kdnsd process of pod, or ok=false.
func findKdnsd(pod string) (p kdnsdProcess, ok bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	want := []byte("POD_NAME=" + pod + "\x00")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "kdnsd" {
			continue
		}
		env, err := os.ReadFile(d + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), want) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		started, err := processStart(d)
		if err != nil {
			continue
		}
		return kdnsdProcess{pid: pid, started: started}, true
	}
	return kdnsdProcess{}, false
}

// processStart is when the process at /proc/PID dir started, on the wall
// clock: its start in clock ticks since boot, set against CLOCK_BOOTTIME now.
func processStart(dir string) (time.Time, error) {
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return time.Time{}, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	if len(fields) < 20 {
		return time.Time{}, fmt.Errorf("%s/stat: too few fields", dir)
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64) // field 22: starttime
	if err != nil {
		return time.Time{}, err
	}
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	age := time.Duration(ts.Nano()) - time.Duration(ticks)*time.Second/ticksPerSecond
	return now.Add(-age), nil
}

// killKdnsd sends sig to pod's kdnsd process and returns the process.
func killKdnsd(t *testing.T, pod string, sig syscall.Signal) kdnsdProcess {
	t.Helper()
	p, ok := findKdnsd(pod)
	if !ok {
		t.Fatalf("no kdnsd process of pod %s on the node", pod)
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		t.Fatalf("kill %d (%s): %v", p.pid, pod, err)
	}
	return p
}
