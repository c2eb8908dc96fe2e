// Package filewatch owns values kdnsd reads from files that operators rotate
// in place (certificates, CAs, tokens mounted from Secrets): a value is
// parsed again whenever one of its files changes on disk.
package filewatch

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// Value is a value parsed from files, parsed again when any of them changes
// (size or modification time). A change that does not parse keeps the last
// good value, and is logged once.
type Value[T any] struct {
	what  string
	paths []string
	parse func() (T, error)
	log   *slog.Logger

	mu     sync.Mutex
	stamp  string
	val    T
	failed string // the stamp (or stat error) last logged as failing
}

// New parses the files once: a configuration that does not parse now is an
// error. what names the value in logs.
func New[T any](what string, log *slog.Logger, parse func() (T, error), paths ...string) (*Value[T], error) {
	if log == nil {
		log = slog.Default()
	}
	v := &Value[T]{what: what, paths: paths, parse: parse, log: log}
	stamp, err := stampOf(paths)
	if err != nil {
		return nil, err
	}
	val, err := parse()
	if err != nil {
		return nil, err
	}
	v.stamp, v.val = stamp, val
	return v, nil
}

// Get returns the value of the files as they are now, or the last good one.
func (v *Value[T]) Get() T {
	v.mu.Lock()
	defer v.mu.Unlock()
	stamp, err := stampOf(v.paths)
	if err == nil && stamp == v.stamp {
		return v.val
	}
	if err == nil {
		var val T
		if val, err = v.parse(); err == nil {
			v.stamp, v.val, v.failed = stamp, val, ""
			v.log.Info("reloaded "+v.what, "files", v.paths)
			return val
		}
	} else {
		stamp = err.Error()
	}
	if v.failed != stamp {
		v.failed = stamp
		v.log.Warn("cannot reload "+v.what+"; keeping the last good one", "err", err)
	}
	return v.val
}

func stampOf(paths []string) (string, error) {
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

// KeyPair parses a certificate and its key; what names them in errors.
func KeyPair(what, cert, key string) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s certificate %s / key %s: %w", what, cert, key, err)
		}
		return &c, nil
	}
}

// CAPool parses a file of PEM CA certificates; what names it in errors.
func CAPool(what, path string) func() (*x509.CertPool, error) {
	return func() (*x509.CertPool, error) {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s CA: %w", what, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s CA: no PEM certificate in %s", what, path)
		}
		return pool, nil
	}
}
