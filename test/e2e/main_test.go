//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/test/e2e/node"
)

// nodeEnv is the node run.sh brought up, as it describes it in the
// environment.
var (
	nodeEnv    node.Env
	figuresOut = os.Getenv("KDNSD_E2E_FIGURES")
)

func TestMain(m *testing.M) {
	var err error
	if nodeEnv, err = node.FromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	up, err := startUpstream(upstreamAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: upstream DNS server:", err)
		os.Exit(1)
	}
	code := m.Run()
	up.Shutdown()
	os.Exit(code)
}

// figures collects the numbers the scenarios measure; they are logged and
// written to $KDNSD_E2E_FIGURES as a Markdown list when the run ends.
var figures struct {
	sync.Mutex
	lines []string
}

// figure records one measured number (or fact) of the test t.
func figure(t *testing.T, name, format string, args ...any) {
	t.Helper()
	value := fmt.Sprintf(format, args...)
	t.Logf("FIGURE %s: %s", name, value)
	figures.Lock()
	defer figures.Unlock()
	figures.lines = append(figures.lines, fmt.Sprintf("- %s — %s: %s", t.Name(), name, value))
	if figuresOut == "" {
		return
	}
	head := fmt.Sprintf("# make e2e figures, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(figuresOut, []byte(head+strings.Join(figures.lines, "\n")+"\n"), 0o644); err != nil {
		t.Errorf("writing %s: %v", figuresOut, err)
	}
}
