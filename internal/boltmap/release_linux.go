package boltmap

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Release drops db's mapped pages from the process (madvise
// MADV_DONTNEED). They are clean copies of the page cache: dropping them
// loses nothing, and a later read maps the page again.
func Release(db *bolt.DB) error {
	// A read transaction holds bbolt's map lock: the map cannot be moved
	// or unmapped (a remap as the file grows) while it is advised.
	return db.View(func(tx *bolt.Tx) error {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, db.Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED); errno != 0 {
			return errno
		}
		return nil
	})
}
