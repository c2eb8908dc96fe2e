package chaos

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kdnsd/kdnsd/raftauth"
	"github.com/kdnsd/kdnsd/test/testenv"
)

var (
	runChaos  = flag.Bool("chaos", false, "run the chaos scenarios (root; make chaos)")
	profile   = flag.String("chaos.profile", "full", "full: every scenario; short: the five most telling ones with shorter faults (CI)")
	voters    = flag.Int("chaos.voters", 3, "voters of each scenario's cluster: 3 or 5")
	reportMD  = flag.String("chaos.md", "", "the markdown report to write (default: CHAOS.md in -chaos.assets)")
	assetsDir = flag.String("chaos.assets", "", "where chaos.json and the PNG timelines are written (default: a temporary directory)")
	histories = flag.String("chaos.histories", "", "when set, every scenario's whole recorded history is written there as <scenario>.json (large)")
	kdnsdBin  = flag.String("chaos.kdnsd", "", "the kdnsd binary under test (default: built from this checkout)")
	logsDir   = flag.String("chaos.logs", "", "when set, every replica's log is copied there as <scenario>-<replica>.log")
	onNode    = flag.Bool("chaos.node", false, "run the scenarios on the pods of kdnsd's StatefulSet on the real node of test/e2e (make chaos-node runs the suite there)")
)

var (
	bin string
	nw  *network
	// skipReason, when set, is why the scenarios cannot run here.
	skipReason string
)

// TestMain runs the checker's tests as they are; with -chaos it re-executes
// the test binary in a private network namespace (netns_test.go), lays out
// the replicas' namespaces there, builds kdnsd, then runs the scenarios
// (TestChaos starts the real API server, testenv.Get).
func TestMain(m *testing.M) {
	flag.Parse()
	switch {
	case !*runChaos:
		skipReason = "the chaos scenarios run with -chaos (make chaos, make chaos-short)"
		os.Exit(m.Run())
	case *voters != 3 && *voters != 5:
		fmt.Fprintf(os.Stderr, "chaos: -chaos.voters %d: want 3 or 5\n", *voters)
		os.Exit(2)
	case *onNode:
		// run.sh runs the suite inside the node's network namespace,
		// where the pods' addresses are reached.
		os.Exit(m.Run())
	case os.Getenv(insideEnv) == "":
		if skipReason = netnsUnavailable(); skipReason != "" {
			os.Exit(m.Run())
		}
		os.Exit(reexec())
	}
	os.Exit(inside(m))
}

func inside(m *testing.M) int {
	var err error
	if nw, err = setupNetwork(*voters + scaleBy); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: network:", err)
		return 1
	}
	defer nw.close()
	dir, err := os.MkdirTemp("", "kdnsd-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bin = *kdnsdBin; bin == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		bin = filepath.Join(dir, "kdnsd")
		build := exec.Command("go", "build", "-o", bin, "./cmd/kdnsd")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: build kdnsd:", err)
			return 1
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return testenv.Run(m)
}

// proxiedKubeconfig writes the kdnsd identity's kubeconfig with the API
// server at proxy (the bridge's side of apiProxy), still verified as the
// loopback address its certificate names.
func proxiedKubeconfig(t *testing.T, env *testenv.Env, proxy string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.KdnsdKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		c.TLSServerName = u.Hostname()
		c.Server = "https://" + proxy
	}
	path := filepath.Join(t.TempDir(), "kdnsd.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// raftCA runs `kdnsd certs init` and returns the flags that make every
// replica issue its own Raft leaf from that CA: Raft between the replicas'
// namespaces is mutual TLS, as in a cluster.
func raftCA(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "raft-ca")
	if out, err := exec.Command(bin, "certs", "init", dir).CombinedOutput(); err != nil {
		t.Fatalf("kdnsd certs init: %v: %s", err, out)
	}
	return []string{"--raft-tls-ca", filepath.Join(dir, raftauth.CACertFile),
		"--raft-tls-ca-key", filepath.Join(dir, raftauth.CAKeyFile), "--raft-tls-domain", "kdnsd-peers.chaos.svc"}
}
