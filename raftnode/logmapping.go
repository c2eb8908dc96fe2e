package raftnode

import (
	"errors"
	"reflect"
	"unsafe"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/kdnsd/kdnsd/internal/boltmap"
)

// ReleaseLogMapping gives back the pages of the Raft log's file that this
// process has mapped (boltmap.Release). bbolt reads the log through its map
// as it appends, as Raft reads entries back and as a compaction deletes
// them, so a replica grown to 100k services through the API kept ~9 MiB of
// its log file in RSS (BENCHMARKS.md) that nothing reads again. It is cheap
// when little is mapped, and meant for after a burst of work, not for every
// append: the advice walks the whole map.
func (n *Node) ReleaseLogMapping() error {
	if n.logDB == nil {
		return errors.New("raft-boltdb's bbolt handle was not found (see logDB)")
	}
	if err := boltmap.Release(n.logDB); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return err
	}
	return nil
}

// logDB returns the bbolt handle of raft-boltdb's store, which the library
// keeps in an unexported field with no accessor: read by reflection, so that
// the log store stays raft-boltdb's own. Nil if a version of the library
// holds it otherwise (TestLogMappingReleased fails then).
func logDB(s *raftboltdb.BoltStore) *bolt.DB {
	f := reflect.ValueOf(s).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*bolt.DB]() {
		return nil
	}
	return *(**bolt.DB)(unsafe.Pointer(f.UnsafeAddr()))
}
