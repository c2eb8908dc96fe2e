// Package node is the Kubernetes node that test/e2e/run.sh brings up, as the
// Go tests that run on it see it (test/e2e, and test/chaos with -chaos.node):
// the environment run.sh describes it in, kubectl and node.sh against it,
// deploy/statefulset installed as an operator installs it, and the kdnsd
// processes of its pods, which a test signals as a crash or a hang would.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kdnsd/kdnsd/test/testenv"
)

// kdnsd's StatefulSet in deploy/statefulset.
const (
	Namespace = "kube-system"
	Selector  = "app.kubernetes.io/name=kdnsd"
)

// Env is the node as run.sh describes it in the environment.
type Env struct {
	KubectlBin string // KDNSD_E2E_KUBECTL
	Kubeconfig string // KDNSD_E2E_KUBECONFIG, the admin's
	Script     string // KDNSD_E2E_NODE_SH
	Kdnsd      string // KDNSD_E2E_KDNSD, the operator's CLI
	State      string // KDNSD_E2E_STATE
}

// FromEnv reads Env; the error says what to run when the node is missing.
func FromEnv() (Env, error) {
	e := Env{
		KubectlBin: os.Getenv("KDNSD_E2E_KUBECTL"),
		Kubeconfig: os.Getenv("KDNSD_E2E_KUBECONFIG"),
		Script:     os.Getenv("KDNSD_E2E_NODE_SH"),
		Kdnsd:      os.Getenv("KDNSD_E2E_KDNSD"),
		State:      os.Getenv("KDNSD_E2E_STATE"),
	}
	for _, v := range []string{e.KubectlBin, e.Kubeconfig, e.Script, e.Kdnsd, e.State} {
		if v == "" {
			return e, errors.New("these tests need the node that test/e2e/run.sh brings up: run `make e2e` (or `make chaos-node`) as root")
		}
	}
	return e, nil
}

// Kubectl runs kubectl against the node with the admin's kubeconfig and
// returns its standard output; the error holds its standard error.
func (e Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.KubectlBin, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out), nil
}

// RunScript runs node.sh (e.g. apiserver stop|start).
func (e Env) RunScript(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{e.Script}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// AdminConfig is the client configuration of the admin's kubeconfig.
func (e Env) AdminConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// Install installs deploy/statefulset the way an operator does, from a
// copy of it in dir (so a CA the test makes never lands in the checkout):
// with `kdnsd certs init raft-ca` when the kustomization generates the Raft
// CA secret, then `kubectl apply -k`, whose output it returns.
func (e Env) Install(ctx context.Context, dir string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "statefulset")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "deploy", "statefulset"))); err != nil {
		return "", err
	}
	kustomization, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	switch {
	case os.IsNotExist(err):
		// Before deploy/statefulset had its own kustomization, the operator
		// applied rbac.yaml, then kdnsd.yaml: the same, as one kustomization.
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [rbac.yaml, kdnsd.yaml]\n"
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	case strings.Contains(string(kustomization), "raft-ca/"):
		ca := filepath.Join(dir, "raft-ca")
		if err := os.RemoveAll(ca); err != nil { // a CA of the checkout's own
			return "", err
		}
		if out, err := exec.CommandContext(ctx, e.Kdnsd, "certs", "init", ca).CombinedOutput(); err != nil {
			return "", fmt.Errorf("kdnsd certs init: %v\n%s", err, out)
		}
	}
	return e.Kubectl(ctx, "apply", "-k", dir)
}

// Process is the kdnsd server process of one pod on the node.
type Process struct {
	PID     int
	Started time.Time // to /proc's 10 ms resolution
}

// FindKdnsd returns the running kdnsd process of pod, found by the
// POD_NAME in its environment, or ok=false.
func FindKdnsd(pod string) (p Process, ok bool) {
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
		return Process{PID: pid, Started: started}, true
	}
	return Process{}, false
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
