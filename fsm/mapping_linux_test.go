package fsm

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/kdnsd/kdnsd/internal/boltmap/boltmaptest"
)

// TestStoreReleasesFileMapping: once Open has read every record, a batch
// has written (reading the pages on its keys' paths) or Restore has freed
// every old page, the store's file is no longer counted in the process's
// RSS (its mapped pages were released); the View is unchanged by it.
func TestStoreReleasesFileMapping(t *testing.T) {
	var cmds []Command
	for i := range 4000 {
		name := fmt.Sprintf("svc%d", i)
		ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
		cmds = append(cmds, UpsertService(svc("default", name, ip)), UpsertSlice(slice("default", name+"-a", name, ip)))
	}
	path := filepath.Join(t.TempDir(), "fsm.db")
	s := openStore(t, path)
	mustApply(t, s, entry(t, 1, cmds...))
	want := s.View()
	s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 2<<20 {
		t.Fatalf("the store file is %d bytes: too small to tell a released mapping from a few pages", st.Size())
	}
	// The test fails when more than this is mapped: an eighth of the file,
	// where a store that keeps its pages maps nearly all of it.
	limit := st.Size() / 8

	s = openStore(t, path)
	if !viewsEqual(s.View(), want) {
		t.Fatal("the View read on open differs from the one applied")
	}
	if rss := boltmaptest.MappedRSS(t, path); rss > limit {
		t.Errorf("after Open, %d bytes of the %d-byte store file are in RSS", rss, st.Size())
	}

	// Every service again, with another address: the writes read each
	// leaf page they change through the map.
	var again []Command
	for _, c := range cmds {
		if c.Service != nil {
			changed := *c.Service
			changed.ClusterIPs = []netip.Addr{changed.ClusterIPs[0].Next()}
			again = append(again, UpsertService(&changed))
		}
	}
	// The first batch may grow the file, which bbolt maps anew; the
	// second writes into pages the first freed.
	for i := range 2 {
		mustApply(t, s, entry(t, uint64(2+i), again...))
		if rss := boltmaptest.MappedRSS(t, path); rss > limit {
			t.Errorf("after batch %d, which wrote every service, %d bytes of the %d-byte store file are in RSS", i+1, rss, st.Size())
		}
	}

	var snap bytes.Buffer
	if err := WriteSnapshot(&snap, want); err != nil {
		t.Fatal(err)
	}
	// The first restore grows the file (its old pages are free only once it
	// commits), and bbolt maps a grown file anew; the second writes into the
	// pages the first freed, in the same map.
	for i := range 2 {
		if err := s.Restore(bytes.NewReader(snap.Bytes()), uint64(4+i)); err != nil {
			t.Fatal(err)
		}
		if rss := boltmaptest.MappedRSS(t, path); rss > limit {
			t.Errorf("after restore %d, %d bytes of the %d-byte store file are in RSS", i+1, rss, st.Size())
		}
	}
	if !s.View().SameRecords(want) {
		t.Fatal("the records restored differ from those of the snapshot")
	}
}
