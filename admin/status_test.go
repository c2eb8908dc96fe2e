package admin

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
)

func TestNewStatus(t *testing.T) {
	servers := []raftnode.ServerInfo{
		{ID: "a", Address: "10.0.0.1:7000", Voter: true},
		{ID: "b", Address: "10.0.0.2:7000", Voter: true},
		{ID: "r", Address: "10.0.0.3:7000", Voter: false},
	}
	view := fsm.NewView(42, []*fsm.Service{
		{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
	}, nil)
	heard := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name        string
		st          raftnode.Status
		wantVoter   bool
		wantContact bool // LastContactMS is set, to at least an hour
	}{
		{"leader", raftnode.Status{ID: "a", State: raftnode.StateLeader, LastContact: heard}, true, false},
		{"follower", raftnode.Status{ID: "b", State: raftnode.StateFollower, LastContact: heard}, true, true},
		{"follower that never heard from a leader", raftnode.Status{ID: "b", State: raftnode.StateFollower}, true, false},
		{"read replica", raftnode.Status{ID: "r", State: raftnode.StateFollower, LastContact: heard}, false, true},
		{"not in the configuration", raftnode.Status{ID: "x", State: raftnode.StateFollower, LastContact: heard}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.st.Servers, tc.st.LeaderID, tc.st.LeaderAddr = servers, "a", "10.0.0.1:7000"
			got := NewStatus(tc.st, view, 41, "watching")
			if got.Voter != tc.wantVoter {
				t.Errorf("voter %v, want %v", got.Voter, tc.wantVoter)
			}
			if contact := got.LastContactMS != nil; contact != tc.wantContact || contact && *got.LastContactMS < time.Hour.Milliseconds() {
				t.Errorf("last contact %v ms, want set: %v", got.LastContactMS, tc.wantContact)
			}
			if got.LeaderAddress != "10.0.0.1:7000" || got.ServedIndex != 41 || got.Services != 1 || got.EndpointSlices != 0 || got.Watcher != "watching" {
				t.Errorf("status %+v", got)
			}
		})
	}
}

// TestStatusJSONNames: the status document keeps the JSON names its readers
// of every version use: the membership probe (GET /status) reads the
// raftnode.Status fields, and admin clients and peers (GET /v1/status) the
// names /v1/status had before it carried raftnode.Status.
func TestStatusJSONNames(t *testing.T) {
	st := raftnode.Status{
		ID: "b", State: raftnode.StateFollower, Term: 3, LeaderID: "a", LeaderAddr: "10.0.0.1:7000",
		CommitIndex: 9, LastLogIndex: 9, AppliedIndex: 9, LastContact: time.Now(),
		Servers:     []raftnode.ServerInfo{{ID: "b", Address: "10.0.0.2:7000", Voter: true}},
		Incarnation: "i1", Admission: raftnode.AdmissionAdmitted, MaxCommandVersion: 2, CommandVersion: 2,
		ApplyBlocked: "stopped", ApplyBlockedIndex: 10,
	}
	raw, err := json.Marshal(NewStatus(st, fsm.NewView(9, nil, nil), 9, "follower"))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		// raftnode.Status, read by membership probes of every version
		"id", "state", "term", "leader_id", "leader_addr", "commit_index", "last_log_index", "applied_index",
		"last_contact", "servers", "incarnation", "admission", "max_command_version", "command_version",
		"apply_blocked", "apply_blocked_index",
		// GET /v1/status of the versions before it carried raftnode.Status
		"voter", "leader_address", "last_contact_ms", "served_index", "services", "endpoint_slices", "watcher",
	} {
		if _, ok := fields[name]; !ok {
			t.Errorf("no %q in %s", name, raw)
		}
	}
}
