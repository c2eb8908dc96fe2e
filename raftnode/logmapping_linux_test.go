package raftnode

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/boltmap/boltmaptest"
)

// TestLogMappingReleased: once every entry of the Raft log has been read
// through bbolt's map, ReleaseLogMapping takes the log file out of the
// process's RSS, and the entries still read the same.
func TestLogMappingReleased(t *testing.T) {
	ms := newCluster(t, 1)
	m := leaderOf(t, ms)
	for batch := range 16 {
		var cmds []fsm.Command
		for i := range 2000 {
			cmds = append(cmds, fsm.UpsertService(service(fmt.Sprintf("svc-%d-%d", batch, i), fmt.Sprintf("10.96.%d.%d", batch, i%250+1))))
		}
		commit(t, m, cmds...)
	}
	path := filepath.Join(m.dir, "raft", "raft.db")
	if m.node.logDB == nil || m.node.logDB.Path() != path {
		t.Fatalf("the log store's bbolt handle is %v, want the one of %s", m.node.logDB, path)
	}
	// The entries so far: Raft may append its own after them.
	first, _ := m.node.logStore.FirstIndex()
	last, _ := m.node.logStore.LastIndex()
	readAll := func() []raft.Log {
		var logs []raft.Log
		for i := first; i <= last; i++ {
			var l raft.Log
			if err := m.node.logStore.GetLog(i, &l); err != nil {
				t.Fatal(err)
			}
			logs = append(logs, l)
		}
		return logs
	}
	before := readAll()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mapped := boltmaptest.MappedRSS(t, path)
	if mapped < st.Size()/4 {
		t.Fatalf("%d bytes of the %d-byte log file are in RSS after every entry was read: too few to tell a release", mapped, st.Size())
	}
	if err := m.node.ReleaseLogMapping(); err != nil {
		t.Fatal(err)
	}
	if rss := boltmaptest.MappedRSS(t, path); rss > st.Size()/8 {
		t.Errorf("after the release, %d bytes of the %d-byte log file are in RSS (%d before)", rss, st.Size(), mapped)
	}
	after := readAll()
	if len(after) != len(before) {
		t.Fatalf("%d entries after the release, %d before", len(after), len(before))
	}
	for i := range before {
		if string(after[i].Data) != string(before[i].Data) || after[i].Index != before[i].Index {
			t.Fatalf("entry %d reads differently after the release", before[i].Index)
		}
	}
	node := m.node
	m.stop()
	// The releaser may still call once the node has shut down.
	if err := node.ReleaseLogMapping(); err != nil {
		t.Errorf("release after shutdown: %v", err)
	}
}
