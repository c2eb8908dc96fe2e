package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kdnsd/kdnsd/internal/boltguard"
	"github.com/kdnsd/kdnsd/internal/boltguard/boltguardtest"
)

func svc(ns, name string, ips ...string) *Service {
	s := &Service{Namespace: ns, Name: name, Type: TypeClusterIP, Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80}}}
	for _, ip := range ips {
		s.ClusterIPs = append(s.ClusterIPs, netip.MustParseAddr(ip))
	}
	return s
}

func slice(ns, name, service string, ips ...string) *EndpointSlice {
	e := &EndpointSlice{Namespace: ns, Name: name, Service: service, Ports: []Port{{Name: "http", Protocol: "TCP", Port: 8080}}}
	for _, ip := range ips {
		e.Endpoints = append(e.Endpoints, Endpoint{Addresses: []netip.Addr{netip.MustParseAddr(ip)}, Ready: true})
	}
	return e
}

func entry(t testing.TB, index uint64, cmds ...Command) Entry {
	t.Helper()
	data, err := Encode(cmds)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Index: index, Data: data}
}

func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustApply(t testing.TB, s *Store, entries ...Entry) {
	t.Helper()
	if err := s.ApplyEntries(entries); err != nil {
		t.Fatal(err)
	}
}

// viewsEqual compares two Views: records, index, and the grouping of
// slices by service.
func viewsEqual(a, b *View) bool {
	if a.Index() != b.Index() || !a.SameRecords(b) || a.bySvc.Len() != b.bySvc.Len() {
		return false
	}
	for list := range a.bySvc.All() {
		if len(b.SlicesOf(list[0].ServiceKey())) != len(list) {
			return false
		}
	}
	return true
}

func TestApplyCommands(t *testing.T) {
	web := ServiceKey{"default", "web"}
	tests := []struct {
		name       string
		entries    [][]Command
		wantSvcs   int
		wantSlices int
		check      func(t *testing.T, v *View)
	}{
		{
			name:     "upsert service",
			entries:  [][]Command{{UpsertService(svc("default", "web", "10.96.0.10"))}},
			wantSvcs: 1,
			check: func(t *testing.T, v *View) {
				if got := v.Service(web).ClusterIPs[0].String(); got != "10.96.0.10" {
					t.Errorf("cluster IP %s", got)
				}
			},
		},
		{
			name: "replace service",
			entries: [][]Command{
				{UpsertService(svc("default", "web", "10.96.0.10"))},
				{UpsertService(svc("default", "web", "10.96.0.11", "fd00::11"))},
			},
			wantSvcs: 1,
			check: func(t *testing.T, v *View) {
				if got := len(v.Service(web).ClusterIPs); got != 2 {
					t.Errorf("%d cluster IPs, want 2", got)
				}
			},
		},
		{
			name: "delete service keeps its slices until they are deleted",
			entries: [][]Command{
				{UpsertService(svc("default", "web", "10.96.0.10")), UpsertSlice(slice("default", "web-a", "web", "10.0.0.1"))},
				{DeleteService(web)},
			},
			wantSlices: 1,
		},
		{
			name: "slice change replaces exactly that slice",
			entries: [][]Command{
				{UpsertSlice(slice("default", "web-a", "web", "10.0.0.1")), UpsertSlice(slice("default", "web-b", "web", "10.0.0.2"))},
				{UpsertSlice(slice("default", "web-a", "web", "10.0.0.3", "10.0.0.4"))},
			},
			wantSlices: 2,
			check: func(t *testing.T, v *View) {
				list := v.SlicesOf(web)
				if len(list) != 2 || list[0].Name != "web-a" || len(list[0].Endpoints) != 2 || list[1].Name != "web-b" {
					t.Errorf("slices of web: %+v", list)
				}
			},
		},
		{
			name: "delete slice",
			entries: [][]Command{
				{UpsertSlice(slice("default", "web-a", "web", "10.0.0.1")), UpsertSlice(slice("default", "web-b", "web", "10.0.0.2"))},
				{DeleteSlice(SliceKey{"default", "web-a"})},
			},
			wantSlices: 1,
			check: func(t *testing.T, v *View) {
				if list := v.SlicesOf(web); len(list) != 1 || list[0].Name != "web-b" {
					t.Errorf("slices of web: %+v", list)
				}
			},
		},
		{
			name: "slice moved to another service",
			entries: [][]Command{
				{UpsertSlice(slice("default", "s", "web", "10.0.0.1"))},
				{UpsertSlice(slice("default", "s", "api", "10.0.0.1"))},
			},
			wantSlices: 1,
			check: func(t *testing.T, v *View) {
				if len(v.SlicesOf(web)) != 0 || len(v.SlicesOf(ServiceKey{"default", "api"})) != 1 {
					t.Errorf("slice not moved")
				}
			},
		},
		{
			name:    "deleting what does not exist is harmless",
			entries: [][]Command{{DeleteService(web), DeleteSlice(SliceKey{"default", "x"})}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fsm.db")
			s := openStore(t, path)
			var before []*View
			for i, cmds := range tt.entries {
				before = append(before, s.View())
				mustApply(t, s, entry(t, uint64(i+1), cmds...))
			}
			v := s.View()
			if n, m := v.Counts(); n != tt.wantSvcs || m != tt.wantSlices {
				t.Fatalf("counts %d services %d slices, want %d %d", n, m, tt.wantSvcs, tt.wantSlices)
			}
			if v.Index() != uint64(len(tt.entries)) {
				t.Errorf("index %d", v.Index())
			}
			if tt.check != nil {
				tt.check(t, v)
			}
			// Earlier Views are immutable.
			if len(before) > 0 && before[0].Index() != 0 {
				t.Errorf("first view changed index to %d", before[0].Index())
			}
			// The same state comes back from disk.
			s.Close()
			if !viewsEqual(openStore(t, path).View(), v) {
				t.Errorf("reopened store differs")
			}
		})
	}
}

func TestApplyIsIdempotentByIndex(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "fsm.db"))
	mustApply(t, s, entry(t, 5, UpsertService(svc("default", "web", "10.96.0.10"))))
	// A replay of 5 and an older entry change nothing.
	mustApply(t, s,
		entry(t, 3, UpsertService(svc("default", "old", "10.96.0.3"))),
		entry(t, 5, DeleteService(ServiceKey{"default", "web"})))
	v := s.View()
	if v.Index() != 5 || v.Service(ServiceKey{"default", "web"}) == nil || v.Service(ServiceKey{"default", "old"}) != nil {
		t.Fatalf("replay changed state: index %d", v.Index())
	}
}

// TestAppendedAt: a View carries the AppendedAt of the last entry it
// applied, and one loaded from the file has none.
func TestAppendedAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	s := openStore(t, path)
	at := func(e Entry, ms int64) Entry {
		e.AppendedAt = time.UnixMilli(ms)
		return e
	}
	mustApply(t, s,
		at(entry(t, 1, UpsertService(svc("default", "a", "10.96.0.1"))), 1000),
		at(entry(t, 2, UpsertService(svc("default", "b", "10.96.0.2"))), 2000))
	if got := s.View().AppendedAt(); !got.Equal(time.UnixMilli(2000)) {
		t.Errorf("after entries 1 and 2: AppendedAt %v, want entry 2's", got)
	}
	// A replayed entry is skipped, with its time.
	mustApply(t, s, at(entry(t, 2, UpsertService(svc("default", "b", "10.96.0.2"))), 5000))
	if got := s.View().AppendedAt(); !got.Equal(time.UnixMilli(2000)) {
		t.Errorf("after replaying entry 2: AppendedAt %v, want its first time", got)
	}
	s.Close()
	if got := openStore(t, path).View().AppendedAt(); !got.IsZero() {
		t.Errorf("View loaded from the file: AppendedAt %v, want none", got)
	}
}

func TestSubscribeCoalesces(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "fsm.db"))
	ch, cancel := s.Subscribe()
	defer cancel()
	for i := uint64(1); i <= 3; i++ {
		mustApply(t, s, entry(t, i, UpsertService(svc("default", "web", "10.96.0.10"))))
	}
	<-ch
	select {
	case <-ch:
		t.Fatal("three publishes gave more than one pending signal")
	default:
	}
	if s.View().Index() != 3 {
		t.Fatal("view not current after signal")
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := openStore(t, filepath.Join(t.TempDir(), "a.db"))
	mustApply(t, src,
		entry(t, 1, UpsertService(svc("default", "web", "10.96.0.10", "fd00::10")), UpsertSlice(slice("default", "web-a", "web", "10.0.0.1", "10.0.0.2"))),
		entry(t, 2, UpsertService(svc("kube-system", "dns", "10.96.0.53"))))
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, src.View()); err != nil {
		t.Fatal(err)
	}
	dstPath := filepath.Join(t.TempDir(), "b.db")
	dst := openStore(t, dstPath)
	mustApply(t, dst, entry(t, 1, UpsertService(svc("default", "gone", "10.96.0.99"))))
	if err := dst.Restore(bytes.NewReader(buf.Bytes()), src.View().Index()); err != nil {
		t.Fatal(err)
	}
	if !viewsEqual(dst.View(), src.View()) {
		t.Fatal("restored view differs")
	}
	dst.Close()
	if !viewsEqual(openStore(t, dstPath).View(), src.View()) {
		t.Fatal("restored view differs after reopen")
	}
}

func TestRestoreRejectsCorruptSnapshotAndKeepsState(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "fsm.db"))
	mustApply(t, s, entry(t, 1, UpsertService(svc("default", "web", "10.96.0.10"))))
	for name, data := range map[string][]byte{
		"empty":        nil,
		"wrong format": {7, '{', '}'},
		"truncated":    {snapshotFormatV1, '{', '"', 'i'},
		"invalid":      append([]byte{snapshotFormatV1}, `{"index":4,"services":[{"ns":"","name":""}]}`...),
	} {
		if err := s.Restore(bytes.NewReader(data), 9); err == nil {
			t.Errorf("%s: restore succeeded", name)
		}
	}
	if v := s.View(); v.Index() != 1 || v.Service(ServiceKey{"default", "web"}) == nil {
		t.Fatal("failed restore changed state")
	}
}

func TestOpenCorruptFileFailsClearlyAndKeepsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	garbage := bytes.Repeat([]byte("not a bolt file "), 1024)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of corrupt file: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, garbage) {
		t.Fatal("corrupt file was modified")
	}
}

// TestOpenCorruptPagesFailsClearly: a valid file whose pages were damaged
// (bbolt panics on some of those) gives an error, and is left as it is.
func TestOpenCorruptPagesFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	s := openStore(t, path)
	for i := range 50 {
		mustApply(t, s, entry(t, uint64(i+1), UpsertService(svc("default", "s"+strconv.Itoa(i), "10.96.0.1"))))
	}
	s.Close()
	data := boltguardtest.DamagePages(t, path)
	_, err := Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "file is kept") {
		t.Fatalf("open of a damaged file: %v", err)
	}
	if !errors.Is(err, boltguard.ErrCorrupt) {
		t.Fatalf("want bbolt's panic caught as ErrCorrupt, got %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Fatal("the damaged file was modified")
	}
}

// TestOpenCorruptRecordPageFailsClearly: a damaged page that only the
// walk of a record bucket reads (the services bucket's root, below the
// pages every open reads) gives the same error, though that walk runs on
// a goroutine of its own.
func TestOpenCorruptRecordPageFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	s := openStore(t, path)
	var cmds []Command
	for i := range 2000 {
		cmds = append(cmds, UpsertService(svc("default", "s"+strconv.Itoa(i), "10.96.0.1")))
	}
	mustApply(t, s, entry(t, 1, cmds...))
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int
	err = db.View(func(tx *bolt.Tx) error {
		root, pageSize = int(tx.Bucket(bucketServices).Root()), db.Info().PageSize
		info, err := tx.Page(root)
		if err != nil || info == nil || info.Type != "branch" {
			return fmt.Errorf("the services bucket's root page %d: %+v, %v; want a branch", root, info, err)
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := root * pageSize; i < (root+1)*pageSize; i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, nil)
	if !errors.Is(err, boltguard.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "file is kept") {
		t.Fatalf("open of a file with a damaged record page: %v, want ErrCorrupt naming the file", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("the damaged file was modified")
	}
}

func TestOpenLockedFileFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	openStore(t, path)
	if _, err := Open(path, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v", err)
	}
}

// BenchmarkApplyBatch measures one durable apply of a watcher-sized batch:
// 500 service upserts in one log entry, committed to bbolt with fsync.
func BenchmarkApplyBatch(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "fsm.db"))
	var cmds []Command
	for i := range 500 {
		cmds = append(cmds, UpsertService(svc("bench", "svc"+strconv.Itoa(i), "10.96.0.1")))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		mustApply(b, s, entry(b, uint64(i+1), cmds...))
	}
}

// TestChangedServices: the services whose records or slices differ
// between two Views, whether one is made from the other or both are built
// apart (as from a snapshot).
func TestChangedServices(t *testing.T) {
	web, db := ServiceKey{"default", "web"}, ServiceKey{"default", "db"}
	base := NewView(1, []*Service{svc("default", "web", "10.0.0.1"), svc("default", "db", "10.0.0.2")},
		[]*EndpointSlice{{Namespace: "default", Name: "web-1", Service: "web"}})
	tests := []struct {
		name string
		cmds []Command
		want []ServiceKey
	}{
		{"nothing", nil, nil},
		{"service replaced", []Command{UpsertService(svc("default", "web", "10.0.0.9"))}, []ServiceKey{web}},
		{"service deleted", []Command{DeleteService(db)}, []ServiceKey{db}},
		{"slice added", []Command{UpsertSlice(&EndpointSlice{Namespace: "default", Name: "db-1", Service: "db"})}, []ServiceKey{db}},
		{"slice deleted", []Command{DeleteSlice(SliceKey{"default", "web-1"})}, []ServiceKey{web}},
		{"slice of no service", []Command{UpsertSlice(&EndpointSlice{Namespace: "x", Name: "y-1", Service: "y"})}, []ServiceKey{{"x", "y"}}},
		{"pod only", []Command{UpsertPod(&Pod{Namespace: "default", Name: "p", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.1")}})}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := base.Apply(2, tc.cmds...)
			var apart Records
			for s := range next.Services() {
				apart.Services = append(apart.Services, s)
			}
			for e := range next.Slices() {
				apart.Slices = append(apart.Slices, e)
			}
			for _, v := range []*View{next, apart.View(2)} {
				got := map[ServiceKey]bool{}
				for k := range v.ChangedServices(base) {
					got[k] = true
				}
				want := map[ServiceKey]bool{}
				for _, k := range tc.want {
					want[k] = true
				}
				if !maps.Equal(got, want) {
					t.Errorf("ChangedServices = %v, want %v", got, want)
				}
			}
		})
	}
}
