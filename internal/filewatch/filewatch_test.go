package filewatch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValueFollowsItsFiles: a rewritten file is parsed again at the next
// Get; a rewrite that does not parse keeps the last good value; a file that
// is gone keeps it too; a repaired file is taken again.
func TestValueFollowsItsFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		// A later modification time even on coarse file systems.
		later := time.Now().Add(time.Duration(len(text)) * time.Second)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
	}
	parses := 0
	parse := func() (string, error) {
		parses++
		da, errA := os.ReadFile(a)
		db, errB := os.ReadFile(b)
		if err := errors.Join(errA, errB); err != nil {
			return "", err
		}
		if strings.Contains(string(da)+string(db), "bad") {
			return "", errors.New("does not parse")
		}
		return string(da) + "+" + string(db), nil
	}
	write(a, "one")
	write(b, "two")
	v, err := New("test value", nil, parse, a, b)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"unchanged", func() {}, "one+two"},
		{"second file rotated", func() { write(b, "three") }, "one+three"},
		{"rotation that does not parse", func() { write(a, "bad!") }, "one+three"},
		{"file gone", func() { os.Remove(a) }, "one+three"},
		{"repaired", func() { write(a, "four") }, "four+three"},
	}
	for _, s := range steps {
		s.do()
		if got := v.Get(); got != s.want {
			t.Fatalf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	before := parses
	v.Get()
	v.Get()
	if parses != before {
		t.Fatalf("unchanged files parsed again (%d times)", parses-before)
	}
}

func TestNewFailsOnBadFiles(t *testing.T) {
	if _, err := New("x", nil, CAPool("test", "/nonexistent/ca.pem"), "/nonexistent/ca.pem"); err == nil {
		t.Fatal("New succeeded without the file")
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(path, []byte("not PEM"), 0o600)
	if _, err := CAPool("test", path)(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("CAPool of garbage: %v", err)
	}
	if _, err := KeyPair("test", path, path)(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("KeyPair of garbage: %v", err)
	}
}
