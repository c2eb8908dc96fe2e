package fsm

import "github.com/kdnsd/kdnsd/internal/boltmap"

// releaseMapping gives back the pages of the store's file that this
// process has mapped (boltmap.Release). Without it, a load (every record
// read) or a restore (every old page freed) left the whole file counted in
// the replica's RSS — 89 MB at 100k services — for pages nothing reads
// again until they are written.
func (s *Store) releaseMapping() {
	if err := boltmap.Release(s.db); err != nil {
		s.log.Warn("could not release the store file's mapped pages; they stay in RSS until the kernel reclaims them", "path", s.path, "err", err)
	}
}
