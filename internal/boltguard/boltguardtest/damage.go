// Package boltguardtest damages bbolt files, for the tests of what opens
// them through boltguard.
package boltguardtest

import (
	"os"
	"testing"
)

// DamagePages overwrites every page of the bbolt file at path after its two
// meta pages (4 KiB pages), as bbolt panics on some such damage rather than
// failing, and returns the file's new content.
func DamagePages(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2 * 4096; i < len(data); i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}
