package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdnsd/kdnsd/fsm"
)

func snapshotTestView(n int) *fsm.View {
	var services []*fsm.Service
	var slices []*fsm.EndpointSlice
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		services = append(services, &fsm.Service{Namespace: "default", Name: name, Type: fsm.TypeClusterIP,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)})}})
		slices = append(slices, &fsm.EndpointSlice{Namespace: "default", Name: name + "-x", Service: name,
			Endpoints: []fsm.Endpoint{{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 244, 0, byte(i + 1)})}, Ready: true}}})
	}
	return fsm.NewView(uint64(100+n), services, slices)
}

func TestSnapshotSaveAndRestore(t *testing.T) {
	src := newAdminTestGroup(t)
	want := snapshotTestView(5)
	src.fc.SetView(want)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")

	out, _, err := runAdminCLI(t, append([]string{"snapshot", "save", file}, src.flagsFor("b")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "saved the records of b at index 105 to "+file+": 5 services, 5 endpoint slices, ") {
		t.Errorf("save: %q", out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := fsm.ReadSnapshot(f)
	f.Close()
	if err != nil || !saved.SameRecords(want) {
		t.Fatalf("saved file: %v", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}

	// An existing file is kept unless --force.
	src.fc.SetView(snapshotTestView(7))
	_, _, err = runAdminCLI(t, append([]string{"snapshot", "save", file}, src.flags...)...)
	wantCLIError(t, err, "exists; pass --force")
	out, _, err = runAdminCLI(t, append([]string{"snapshot", "save", file, "--force", "-o", "json"}, src.flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	var res snapshotResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Services != 7 || res.Peer != "a" || res.Index != 107 {
		t.Fatalf("save --force json %q: %v", out, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// Restore into another, fresh group, through a follower.
	dst := newAdminTestGroup(t)
	out, _, err = runAdminCLI(t, append([]string{"snapshot", "restore", file}, dst.flagsFor("c")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "restored "+file+" into the cluster through the leader a") {
		t.Errorf("restore: %q", out)
	}
	if !dst.fc.View().SameRecords(snapshotTestView(7)) {
		t.Error("restored group does not hold the snapshot's records")
	}

	// A file that is not a snapshot is not sent.
	bad := filepath.Join(dir, "bad.snap")
	os.WriteFile(bad, []byte("\x01{not json"), 0o600)
	before := dst.fc.View()
	_, _, err = runAdminCLI(t, append([]string{"snapshot", "restore", bad}, dst.flags...)...)
	wantCLIError(t, err, "is not a valid kdnsd snapshot; nothing was sent")
	if dst.fc.View() != before {
		t.Error("a bad file changed the records")
	}
}

func TestSaveSnapshotKeepsFileWhenTransferIsCutShort(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	var full strings.Builder
	if err := fsm.WriteSnapshot(&full, snapshotTestView(3)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := saveSnapshot(file, strings.NewReader(full.String()[:full.Len()/2]), true)
	wantCLIError(t, err, "does not read", "untouched")
	if data, _ := os.ReadFile(file); string(data) != "old" {
		t.Errorf("file now %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
