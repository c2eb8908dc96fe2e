package admin

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// watched is a value parsed from files, parsed again when any of them
// changes on disk (size or modification time). A change that does not parse
// keeps the last good value, and is logged once.
type watched[T any] struct {
	what  string
	paths []string
	parse func() (T, error)
	log   *slog.Logger

	mu     sync.Mutex
	stamp  string
	val    T
	failed string // the stamp (or stat error) last logged as failing
}

// newWatched parses the files once: a configuration that does not parse
// now is an error.
func newWatched[T any](what string, log *slog.Logger, parse func() (T, error), paths ...string) (*watched[T], error) {
	w := &watched[T]{what: what, paths: paths, parse: parse, log: log}
	stamp, err := fileStamp(paths)
	if err != nil {
		return nil, err
	}
	v, err := parse()
	if err != nil {
		return nil, err
	}
	w.stamp, w.val = stamp, v
	return w, nil
}

func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	stamp, err := fileStamp(w.paths)
	if err == nil && stamp == w.stamp {
		return w.val
	}
	if err == nil {
		var v T
		if v, err = w.parse(); err == nil {
			w.stamp, w.val, w.failed = stamp, v, ""
			w.log.Info("admin: reloaded "+w.what, "files", w.paths)
			return v
		}
	} else {
		stamp = err.Error()
	}
	if w.failed != stamp {
		w.failed = stamp
		w.log.Warn("admin: cannot reload "+w.what+"; keeping the last good one", "err", err)
	}
	return w.val
}

func fileStamp(paths []string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func loadKeyPair(cert, key string) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("admin TLS certificate %s / key %s: %w", cert, key, err)
		}
		return &c, nil
	}
}

func loadCAPool(path string) func() (*x509.CertPool, error) {
	return func() (*x509.CertPool, error) {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("admin CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin CA: no PEM certificate in %s", path)
		}
		return pool, nil
	}
}

// loadTokens reads a token file: one token per line, blank lines and lines
// starting with # ignored.
func loadTokens(path string) func() ([]string, error) {
	return func() ([]string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("admin token file: %w", err)
		}
		tokens := parseTokens(data)
		if len(tokens) == 0 {
			return nil, fmt.Errorf("admin token file %s holds no token", path)
		}
		return tokens, nil
	}
}

func parseTokens(data []byte) []string {
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, line)
	}
	return tokens
}

// ReadTokenFile returns the token a client sends: the first one in the file.
func ReadTokenFile(path string) (string, error) {
	tokens, err := loadTokens(path)()
	if err != nil {
		return "", err
	}
	return tokens[0], nil
}
