// Package boltguard opens bbolt files without letting a corrupt one crash
// the process. bbolt panics, rather than failing, on some corrupt pages; kdnsd
// opens two bbolt files (the record store, fsm, and the Raft log store of
// raft-boltdb, raftnode), and a corrupt one must give a clear error that
// names it, not a crash, and be left as it is for the operator.
package boltguard

import (
	"errors"
	"fmt"
)

// ErrCorrupt is the error Open makes of a panic.
var ErrCorrupt = errors.New("corrupt data file")

// Open runs open, which opens (and may read) a bbolt file, and turns a panic
// in it into an error that wraps ErrCorrupt.
func Open(open func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	return open()
}
