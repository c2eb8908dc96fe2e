package fsm

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func pod(ns, name string, ips ...string) *Pod {
	p := &Pod{Namespace: ns, Name: name}
	for _, ip := range ips {
		p.IPs = append(p.IPs, netip.MustParseAddr(ip))
	}
	return p
}

// entryV2 is entry in command format 2, which namespaces and pods need.
func entryV2(t testing.TB, index uint64, cmds ...Command) Entry {
	t.Helper()
	data, err := EncodeVersion(cmds, int(formatV2))
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Index: index, Data: data}
}

// TestApplyNamespaceAndPodCommands: namespaces and pods apply like services,
// the per-namespace address lookups follow every change (two pods may share
// an address), and the store's file holds the same state.
func TestApplyNamespaceAndPodCommands(t *testing.T) {
	tests := []struct {
		name    string
		entries [][]Command
		wantNS  []string
		// wantAddrs lists namespace/address pairs that must be found;
		// wantNoAddrs those that must not.
		wantAddrs, wantNoAddrs []string
		wantPods               int
		wantTracked            Tracked
	}{
		{
			name:    "upsert and delete namespaces",
			entries: [][]Command{{UpsertNamespace("default"), UpsertNamespace("other")}, {DeleteNamespace("other")}},
			wantNS:  []string{"default"},
		},
		{
			name:      "upsert pod",
			entries:   [][]Command{{UpsertPod(pod("default", "web-0", "10.244.0.1", "fd00::1"))}},
			wantPods:  1,
			wantAddrs: []string{"default/10.244.0.1", "default/fd00::1"}, wantNoAddrs: []string{"other/10.244.0.1", "default/10.244.0.2"},
		},
		{
			name: "replace pod moves its address",
			entries: [][]Command{
				{UpsertPod(pod("default", "web-0", "10.244.0.1"))},
				{UpsertPod(pod("default", "web-0", "10.244.0.2"))},
			},
			wantPods:  1,
			wantAddrs: []string{"default/10.244.0.2"}, wantNoAddrs: []string{"default/10.244.0.1"},
		},
		{
			name: "a shared address stays while one pod has it",
			entries: [][]Command{
				{UpsertPod(pod("default", "a", "10.244.0.1")), UpsertPod(pod("default", "b", "10.244.0.1", "10.244.0.1"))},
				{DeletePod(PodKey{"default", "a"})},
			},
			wantPods:  1,
			wantAddrs: []string{"default/10.244.0.1"},
		},
		{
			name: "delete pod in the batch that created it",
			entries: [][]Command{
				{UpsertPod(pod("default", "a", "10.244.0.1")), DeletePod(PodKey{"default", "a"}), UpsertPod(pod("default", "b", "10.244.0.2"))},
			},
			wantPods:  1,
			wantAddrs: []string{"default/10.244.0.2"}, wantNoAddrs: []string{"default/10.244.0.1"},
		},
		{
			name: "the last pod of a namespace leaves it without addresses",
			entries: [][]Command{
				{UpsertPod(pod("gone", "a", "10.244.0.1"))},
				{DeletePod(PodKey{"gone", "a"})},
				{UpsertPod(pod("gone", "b", "10.244.0.2"))},
			},
			wantPods:  1,
			wantAddrs: []string{"gone/10.244.0.2"}, wantNoAddrs: []string{"gone/10.244.0.1"},
		},
		{
			name:        "set tracked",
			entries:     [][]Command{{SetTracked(Tracked{Namespaces: true, Pods: true})}, {SetTracked(Tracked{Namespaces: true})}},
			wantTracked: Tracked{Namespaces: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fsm.db")
			s := openStore(t, path)
			for i, cmds := range tt.entries {
				mustApply(t, s, entryV2(t, uint64(i+1), cmds...))
			}
			check := func(v *View, when string) {
				t.Helper()
				for _, ns := range tt.wantNS {
					if !v.HasNamespace(ns) {
						t.Errorf("%s: no namespace %s", when, ns)
					}
				}
				if n, p := v.PodCounts(); n != len(tt.wantNS) || p != tt.wantPods {
					t.Errorf("%s: %d namespaces, %d pods; want %d, %d", when, n, p, len(tt.wantNS), tt.wantPods)
				}
				has := func(s string) bool {
					ns, addr, _ := strings.Cut(s, "/")
					return v.HasPodAddr([]byte(ns), netip.MustParseAddr(addr))
				}
				for _, s := range tt.wantAddrs {
					if !has(s) {
						t.Errorf("%s: %s not found", when, s)
					}
				}
				for _, s := range tt.wantNoAddrs {
					if has(s) {
						t.Errorf("%s: %s found", when, s)
					}
				}
				if v.HasPods() != (len(tt.wantAddrs) > 0) {
					t.Errorf("%s: HasPods %v", when, v.HasPods())
				}
				if v.Tracked() != tt.wantTracked {
					t.Errorf("%s: tracked %+v, want %+v", when, v.Tracked(), tt.wantTracked)
				}
			}
			check(s.View(), "applied")
			s.Close()
			reopened := openStore(t, path).View()
			check(reopened, "reopened")
			if !viewsEqual(reopened, s.View()) {
				t.Error("reopened store differs")
			}
		})
	}
}

// TestApplyPodsLeavesEarlierViews: a View is immutable; a batch that
// changes pods does not change the address lookups of the View before.
func TestApplyPodsLeavesEarlierViews(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "fsm.db"))
	mustApply(t, s, entryV2(t, 1, UpsertPod(pod("default", "a", "10.244.0.1"))))
	before := s.View()
	mustApply(t, s, entryV2(t, 2, UpsertPod(pod("default", "a", "10.244.0.2")), UpsertNamespace("default")))
	if !before.HasPodAddr([]byte("default"), netip.MustParseAddr("10.244.0.1")) ||
		before.HasPodAddr([]byte("default"), netip.MustParseAddr("10.244.0.2")) || before.HasNamespace("default") {
		t.Fatal("a later batch changed an earlier View")
	}
}

// TestFormatGatesNewOperations: the operations on namespaces, pods and
// tracked kinds exist from command format 2 on. A leader cannot write them
// in format 1, and a format-1 entry that holds one (corrupt, or from a buggy
// writer) does not decode, so no replica applies what an old build could not.
func TestFormatGatesNewOperations(t *testing.T) {
	for _, cmd := range []Command{
		UpsertNamespace("default"), DeleteNamespace("default"),
		UpsertPod(pod("default", "a", "10.244.0.1")), DeletePod(PodKey{"default", "a"}),
		SetTracked(Tracked{Namespaces: true}),
	} {
		if _, err := Encode([]Command{cmd}); err == nil || !strings.Contains(err.Error(), "needs format 2") {
			t.Errorf("%s encoded in format 1: %v", cmd.Op, err)
		}
		data, err := EncodeVersion([]Command{cmd}, 2)
		if err != nil {
			t.Fatalf("%s in format 2: %v", cmd.Op, err)
		}
		if _, err := Decode(data); err != nil {
			t.Errorf("%s: decode format 2: %v", cmd.Op, err)
		}
		if _, err := decode(data, 1); err == nil {
			t.Errorf("%s: a build of format 1 decodes format 2", cmd.Op)
		}
		data[0] = formatV1
		if _, err := Decode(data); err == nil || !strings.Contains(err.Error(), "needs format 2") {
			t.Errorf("%s in a format-1 entry: %v", cmd.Op, err)
		}
	}
}

func TestEncodeRejectsInvalidNamespaceAndPodCommands(t *testing.T) {
	for name, cmd := range map[string]Command{
		"namespace without name":   UpsertNamespace(""),
		"namespace with namespace": {Op: OpUpsertNamespace, Namespace: "a", Name: "b"},
		"delete namespace unnamed": DeleteNamespace(""),
		"pod without body":         {Op: OpUpsertPod},
		"pod without name":         UpsertPod(&Pod{Namespace: "a"}),
		"delete pod without ns":    DeletePod(PodKey{Name: "a"}),
		"tracked without body":     {Op: OpSetTracked},
	} {
		if _, err := EncodeVersion([]Command{cmd}, 2); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// TestSnapshotRoundTripWithPods: a snapshot carries namespaces, pods and
// tracked kinds, in snapshot format 2, which a build that knows format 1
// only refuses (rather than dropping them); a View without them is still
// written in format 1.
func TestSnapshotRoundTripWithPods(t *testing.T) {
	src := openStore(t, filepath.Join(t.TempDir(), "a.db"))
	mustApply(t, src,
		entry(t, 1, UpsertService(svc("default", "web", "10.96.0.10"))),
		entryV2(t, 2, UpsertNamespace("default"), UpsertNamespace("other"),
			UpsertPod(pod("default", "web-0", "10.244.0.1")), UpsertPod(pod("other", "db-0", "fd00::1")),
			SetTracked(Tracked{Namespaces: true, Pods: true})))
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, src.View()); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[0] != snapshotFormatV2 {
		t.Fatalf("snapshot format %d, want 2", buf.Bytes()[0])
	}
	dstPath := filepath.Join(t.TempDir(), "b.db")
	dst := openStore(t, dstPath)
	mustApply(t, dst, entryV2(t, 1, UpsertNamespace("gone"), UpsertPod(pod("gone", "x", "10.244.9.9"))))
	if err := dst.Restore(bytes.NewReader(buf.Bytes()), 2); err != nil {
		t.Fatal(err)
	}
	if v := dst.View(); !viewsEqual(v, src.View()) || v.HasNamespace("gone") || v.HasPodAddr([]byte("gone"), netip.MustParseAddr("10.244.9.9")) {
		t.Fatal("restored view differs")
	}
	dst.Close()
	if v := openStore(t, dstPath).View(); !viewsEqual(v, src.View()) || !v.HasPodAddr([]byte("other"), netip.MustParseAddr("fd00::1")) {
		t.Fatal("restored view differs after reopen")
	}

	// Without namespaces, pods or tracked kinds: format 1, as before.
	buf.Reset()
	if err := WriteSnapshot(&buf, NewView(3, []*Service{svc("default", "web", "10.96.0.10")}, nil)); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[0] != snapshotFormatV1 {
		t.Fatalf("snapshot of services only in format %d, want 1", buf.Bytes()[0])
	}
	// A format-1 snapshot that holds format-2 records is corrupt.
	bad := append([]byte{snapshotFormatV1}, `{"index":4,"services":[],"slices":[],"pods":[{"ns":"a","name":"b","ips":[]}]}`...)
	if _, err := ReadSnapshot(bytes.NewReader(bad)); err == nil {
		t.Fatal("read pods from a format-1 snapshot")
	}
}
