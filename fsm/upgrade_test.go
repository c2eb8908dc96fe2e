package fsm

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// inFormat is e re-labelled as format version: formats 1 and 2 share their
// JSON body, so this is what a build that writes format 2 writes.
func inFormat(e Entry, version byte) Entry {
	data := append([]byte{version}, e.Data[1:]...)
	return Entry{Index: e.Index, Data: data}
}

// openStoreDecoding opens the store at path as a build whose newest command
// format is maxVersion would.
func openStoreDecoding(t *testing.T, path string, maxVersion int) *Store {
	t.Helper()
	s := openStore(t, path)
	s.maxVersion = maxVersion
	return s
}

// TestUndecodableEntryBlocks: an entry the store cannot decode stops it at
// that entry. Entries before it in the same batch are applied, it and every
// later one are not (also in later calls), the applied index stays below it,
// and the last View stays published. A store opened again by a build that
// decodes the entry applies it and the rest of the log.
func TestUndecodableEntryBlocks(t *testing.T) {
	web := ServiceKey{"default", "web"}
	before := func(t *testing.T) Entry { return entry(t, 2, UpsertService(svc("default", "web", "10.96.0.10"))) }
	bad := func(t *testing.T) Entry { return entry(t, 3, UpsertService(svc("default", "web", "10.96.0.30"))) }
	later := func(t *testing.T) Entry { return entry(t, 4, UpsertService(svc("default", "later", "10.96.0.40"))) }
	tests := []struct {
		name string
		bad  func(t *testing.T) Entry
		// decodedBy is the newest command format of a build that decodes
		// the bad entry; 0 if none does.
		decodedBy int
		wantErr   string
	}{
		{name: "format 2 entry on a format 1 store", bad: func(t *testing.T) Entry { return inFormat(bad(t), 2) }, decodedBy: 2, wantErr: "version byte 2"},
		{name: "unknown format byte", bad: func(t *testing.T) Entry { return inFormat(bad(t), 200) }, wantErr: "version byte 200"},
		{name: "empty entry", bad: func(*testing.T) Entry { return Entry{Index: 3} }, wantErr: "empty"},
		{name: "malformed JSON", bad: func(*testing.T) Entry { return Entry{Index: 3, Data: []byte{formatV1, '[', '{'}} }, wantErr: "corrupt"},
		{name: "not an array", bad: func(*testing.T) Entry { return Entry{Index: 3, Data: []byte(string(formatV1) + `{"op":1}`)} }, wantErr: "corrupt"},
		{name: "data after the array", bad: func(*testing.T) Entry { return Entry{Index: 3, Data: []byte(string(formatV1) + `[] []`)} }, wantErr: "after the JSON array"},
		{name: "unknown operation", bad: func(*testing.T) Entry {
			return Entry{Index: 3, Data: []byte(string(formatV1) + `[{"op":99,"ns":"default","name":"web"}]`)}
		}, wantErr: "unknown operation 99"},
		{name: "unknown field of a newer release", bad: func(*testing.T) Entry {
			return Entry{Index: 3, Data: []byte(string(formatV1) + `[{"op":1,"svc":{"ns":"default","name":"web","type":"ClusterIP","weight":3}}]`)}
		}, wantErr: `unknown field "weight"`},
		{name: "command that fails validation", bad: func(*testing.T) Entry {
			return Entry{Index: 3, Data: []byte(string(formatV1) + `[{"op":1,"svc":{"ns":"","name":"web"}}]`)}
		}, wantErr: "upsert-service without a named service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fsm.db")
			s := openStoreDecoding(t, path, 1)
			mustApply(t, s, entry(t, 1, UpsertService(svc("default", "first", "10.96.0.1"))))
			badEntry := tt.bad(t)
			err := s.ApplyEntries([]Entry{before(t), badEntry, later(t)})
			var blocked *BlockedError
			if !errors.As(err, &blocked) || blocked.Index != 3 || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("apply: %v, want blocked at 3 by %q", err, tt.wantErr)
			}
			if s.Blocked() != blocked {
				t.Fatalf("Blocked() = %v", s.Blocked())
			}
			check := func(s *Store, when string) {
				t.Helper()
				v := s.View()
				if v.Index() != 2 || v.Service(web) == nil || v.Service(web).ClusterIPs[0].String() != "10.96.0.10" ||
					v.Service(ServiceKey{"default", "later"}) != nil {
					t.Fatalf("%s: index %d, web %+v: want the state up to entry 2 only", when, v.Index(), v.Service(web))
				}
			}
			check(s, "after the bad entry")
			// Later calls, with later entries only, apply nothing either.
			if err := s.ApplyEntries([]Entry{entry(t, 5, DeleteService(web))}); !errors.As(err, &blocked) {
				t.Fatalf("apply after blocking: %v", err)
			}
			check(s, "after a later entry")
			s.Close()

			// On disk too the store ends before the bad entry; a store
			// opened again (the replica restarted) is not blocked.
			s = openStoreDecoding(t, path, max(tt.decodedBy, 1))
			check(s, "reopened")
			replay := []Entry{entry(t, 1, UpsertService(svc("default", "first", "10.96.0.1"))), before(t), badEntry, later(t)}
			err = s.ApplyEntries(replay)
			if tt.decodedBy == 0 {
				if !errors.As(err, &blocked) || blocked.Index != 3 {
					t.Fatalf("replay on the same build: %v, want blocked at 3 again", err)
				}
				check(s, "replayed")
				return
			}
			if err != nil {
				t.Fatalf("replay on a build that decodes format %d: %v", tt.decodedBy, err)
			}
			v := s.View()
			if v.Index() != 4 || v.Service(web).ClusterIPs[0].String() != "10.96.0.30" || v.Service(ServiceKey{"default", "later"}) == nil {
				t.Fatalf("after replay: index %d, web %+v", v.Index(), v.Service(web))
			}
		})
	}
}

// TestEncodeVersion: this build writes exactly the formats it reads, and
// each decodes to the same commands.
func TestEncodeVersion(t *testing.T) {
	cmds := []Command{UpsertService(svc("default", "web", "10.96.0.10"))}
	for version := 0; version <= MaxCommandVersion+1; version++ {
		data, err := EncodeVersion(cmds, version)
		if version < BaseCommandVersion || version > MaxCommandVersion {
			if err == nil {
				t.Errorf("format %d: encoded by a build whose newest format is %d", version, MaxCommandVersion)
			}
			continue
		}
		if err != nil || data[0] != byte(version) {
			t.Fatalf("format %d: %v, leading byte %v", version, err, data)
		}
		out, err := Decode(data)
		if err != nil || len(out) != 1 || !out[0].Service.Equal(cmds[0].Service) {
			t.Fatalf("format %d: decode %+v, %v", version, out, err)
		}
	}
}
