package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Environment variables that steer where testenv finds its programs.
const (
	// EnvKubeAPIServer, when set, is the path of the kube-apiserver binary to
	// run, overriding the one build.sh recorded.
	EnvKubeAPIServer = "KDNSD_KUBE_APISERVER"
	// EnvCacheDir is the cache directory build.sh builds into
	// (default $HOME/.cache/kdnsd-testenv).
	EnvCacheDir = "KDNSD_TESTENV_DIR"
	// EnvEtcd, when set, is the path of the etcd binary (default: etcd on
	// PATH, then /usr/bin/etcd).
	EnvEtcd = "KDNSD_ETCD"
	// EnvTmp, when set, is the directory the per-Env temp dirs are made in
	// (default /dev/shm when it is a writable tmpfs, else os.TempDir()).
	EnvTmp = "KDNSD_TESTENV_TMP"
)

// modulePath is the root module whose checkout holds build.sh and rbac.yaml.
const modulePath = "github.com/kdnsd/kdnsd"

const buildHint = "run `make testenv` (bash test/testenv/build.sh) to build it"

// CacheDir is the directory build.sh builds kube-apiserver into:
// $KDNSD_TESTENV_DIR, else $HOME/.cache/kdnsd-testenv, else
// <repo>/.cache/kdnsd-testenv.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	if h := os.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "kdnsd-testenv"), nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "kdnsd-testenv"), nil
}

// Binary returns the path of the kube-apiserver to run: $KDNSD_KUBE_APISERVER
// if set, else the one build.sh recorded in <CacheDir>/current. The error
// says to run `make testenv` when there is none.
func Binary() (string, error) {
	if p := os.Getenv(EnvKubeAPIServer); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("testenv: $%s: %w", EnvKubeAPIServer, err)
		}
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("testenv: kube-apiserver not found (%v); %s", err, buildHint)
	}
	current := filepath.Join(dir, "current")
	b, err := os.ReadFile(current)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("testenv: kube-apiserver has not been built (no %s); %s", current, buildHint)
	}
	if err != nil {
		return "", fmt.Errorf("testenv: %w; %s", err, buildHint)
	}
	p := strings.TrimSpace(string(b))
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("testenv: kube-apiserver recorded in %s: %w; %s", current, err, buildHint)
	}
	return p, nil
}

// EtcdBinary returns the path of etcd: $KDNSD_ETCD, else etcd on PATH, else
// /usr/bin/etcd (Debian's etcd-server).
func EtcdBinary() (string, error) {
	if p := os.Getenv(EnvEtcd); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("testenv: $%s: %w", EnvEtcd, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if checkExecutable("/usr/bin/etcd") == nil {
		return "/usr/bin/etcd", nil
	}
	return "", fmt.Errorf("testenv: etcd not found on PATH; install Debian's etcd-server or %s", buildHint)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// RepoRoot returns the root of the kdnsd checkout: the nearest directory at
// or above the working directory whose go.mod declares module
// github.com/kdnsd/kdnsd (go test runs a package's tests in its directory).
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && moduleOf(b) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: no go.mod of module %s at or above %s", modulePath, wd)
		}
		dir = parent
	}
}

func moduleOf(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}
