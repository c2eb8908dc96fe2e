package admin_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestClusterAdmin runs the admin API of a real three-replica group: every
// check shares one group, in an order where each leaves it usable.
func TestClusterAdmin(t *testing.T) {
	c := newCluster(t, 3, 11)
	leader := c.leader(t)

	t.Run("refuses requests without valid credentials", func(t *testing.T) {
		r := c.reps[0]
		other := admintest.NewCA(t, "other")
		otherCert, otherKey := other.Issue(t, "intruder")
		wrongToken := admintest.WriteToken(t, "not-the-token")
		for _, tt := range []struct {
			name string
			cfg  admin.ClientConfig
			code int
			want string
		}{
			{"no token", admin.ClientConfig{Cert: c.clientCert, Key: c.clientKey}, http.StatusUnauthorized, "missing bearer token"},
			{"wrong token", admin.ClientConfig{TokenFile: wrongToken, Cert: c.clientCert, Key: c.clientKey}, http.StatusUnauthorized, "invalid token"},
			{"no client certificate", admin.ClientConfig{TokenFile: c.tokenFile}, http.StatusUnauthorized, "client certificate required"},
			{"client certificate of another CA", admin.ClientConfig{TokenFile: c.tokenFile, Cert: otherCert, Key: otherKey}, http.StatusForbidden, "client certificate not accepted"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				cl := c.clientWith(t, r, tt.cfg)
				_, err := cl.Status(ctxT(t))
				wantAPIError(t, err, tt.code, tt.want)
				// Every endpoint, the changing ones included.
				_, err = cl.RemovePeer(ctxT(t), leader.id)
				wantAPIError(t, err, tt.code, tt.want)
			})
		}
		if servers, _ := leader.node.Servers(); len(servers) != 3 {
			t.Fatalf("configuration changed by refused requests: %+v", servers)
		}
	})

	t.Run("status", func(t *testing.T) {
		for _, r := range c.reps {
			st, err := c.client(t, r).Status(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != r.id || st.LeaderID != leader.id || !st.Voter || st.Watcher != "test" || st.Term == 0 {
				t.Errorf("%s status %+v", r.id, st)
			}
			if (st.State == "Leader") != (r == leader) {
				t.Errorf("%s state %s, leader is %s", r.id, st.State, leader.id)
			}
		}
	})

	t.Run("peers list shows three healthy peers and the leader", func(t *testing.T) {
		for _, r := range c.reps {
			var resp *admin.PeersResponse
			// A follower may not have heard from the leader yet right after
			// the election.
			wait.For(t, "every peer healthy", 10*time.Second, func() bool {
				var err error
				if resp, err = c.client(t, r).Peers(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				return !slices.ContainsFunc(resp.Peers, func(p admin.Peer) bool { return !p.Healthy })
			})
			if resp.ReportedBy != r.id || resp.LeaderID != leader.id || len(resp.Peers) != 3 {
				t.Fatalf("peers from %s: %+v", r.id, resp)
			}
			for _, p := range resp.Peers {
				rep := c.byID(p.ID)
				if rep == nil || p.Address != rep.raftAddr || !p.Voter || !p.Reachable || p.Leader != (p.ID == leader.id) {
					t.Errorf("peer %+v", p)
				}
				if p.Leader && (p.State != "Leader" || p.LastContactMS != nil) || !p.Leader && (p.State != "Follower" || p.LastContactMS == nil) {
					t.Errorf("peer %+v: state or last contact", p)
				}
			}
		}
	})

	t.Run("remove of an unknown ID is 404 naming it", func(t *testing.T) {
		_, err := c.client(t, c.follower(t)).RemovePeer(ctxT(t), "r9")
		wantAPIError(t, err, http.StatusNotFound, `"r9"`)
	})

	t.Run("add and remove through a follower are applied by the leader", func(t *testing.T) {
		// A fourth replica without admin API, joining as a non-voter.
		extra := &replica{id: "reader", ip: "127.0.0.14", dir: t.TempDir()}
		extra.raftAddr = listenAddr(t, extra.ip)
		c.start(t, extra, nil, false)
		follower := c.follower(t)
		cl := c.client(t, follower)
		conf, err := cl.AddPeer(ctxT(t), extra.id, extra.raftAddr, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(conf.Servers, raftnode.ServerInfo{ID: extra.id, Address: extra.raftAddr, Voter: false}) {
			t.Fatalf("configuration after add: %+v", conf.Servers)
		}
		// The follower learns of the new configuration from the leader.
		var resp *admin.PeersResponse
		i := -1
		wait.For(t, follower.id+" to list "+extra.id, 10*time.Second, func() bool {
			var err error
			if resp, err = cl.Peers(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			i = slices.IndexFunc(resp.Peers, func(p admin.Peer) bool { return p.ID == extra.id })
			return i >= 0
		})
		if resp.Peers[i].Voter || resp.Peers[i].Healthy || !strings.Contains(resp.Peers[i].Problem, "unreachable") ||
			!strings.Contains(resp.Peers[i].Problem, extra.ip) {
			t.Fatalf("peers after add: %+v", resp.Peers)
		}

		if _, err := cl.RemovePeer(ctxT(t), extra.id); err != nil {
			t.Fatal(err)
		}
		leader := c.leader(t)
		if servers, _ := leader.node.Servers(); len(servers) != 3 || slices.ContainsFunc(servers, func(s raftnode.ServerInfo) bool { return s.ID == extra.id }) {
			t.Fatalf("leader's configuration after remove: %+v", servers)
		}
		extra.stop()
	})

	t.Run("transfer-leader to a named ID through a follower", func(t *testing.T) {
		old := c.leader(t)
		var target, via *replica
		for _, r := range c.reps {
			if r != old {
				if target == nil {
					target = r
				} else {
					via = r
				}
			}
		}
		resp, err := c.client(t, via).TransferLeader(ctxT(t), target.id)
		if err != nil {
			t.Fatal(err)
		}
		if resp.PreviousLeader != old.id {
			t.Errorf("transfer answer %+v, want previous leader %s", resp, old.id)
		}
		wait.For(t, target.id+" to lead", 10*time.Second, func() bool { return target.node.IsLeader() })
		if now := c.leader(t); now != target {
			t.Fatalf("%s leads, want %s", now.id, target.id)
		}
	})

	t.Run("transfer-leader to any voter", func(t *testing.T) {
		old := c.leader(t)
		resp, err := c.client(t, old).TransferLeader(ctxT(t), "")
		if err != nil {
			t.Fatal(err)
		}
		if resp.PreviousLeader != old.id {
			t.Errorf("transfer answer %+v", resp)
		}
		if now := c.leader(t); now == old {
			t.Fatalf("%s still leads", old.id)
		}
	})

	t.Run("transfer-leader to an unknown ID is 404", func(t *testing.T) {
		_, err := c.client(t, c.follower(t)).TransferLeader(ctxT(t), "r9")
		wantAPIError(t, err, http.StatusNotFound, `"r9"`)
	})
}

func testRecords(n int) []fsm.Command {
	var cmds []fsm.Command
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		ip := netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(1 + i%250)})
		cmds = append(cmds, fsm.UpsertService(&fsm.Service{
			Namespace: "default", Name: name, Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{ip},
			Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}},
		}))
		cmds = append(cmds, fsm.UpsertSlice(&fsm.EndpointSlice{
			Namespace: "default", Name: name + "-abc", Service: name,
			Ports:     []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}},
			Endpoints: []fsm.Endpoint{{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(1 + i%250)})}, Ready: true}},
		}))
	}
	return cmds
}

// TestSnapshotSaveAndRestoreIntoNewCluster: a snapshot saved from one group
// (from a follower) and restored into a fresh group (through a follower)
// gives every replica of the new group the same records.
func TestSnapshotSaveAndRestoreIntoNewCluster(t *testing.T) {
	src := newCluster(t, 3, 21)
	srcLeader := src.leader(t)
	ctx := ctxT(t)
	if err := srcLeader.node.Commit(ctx, testRecords(40)); err != nil {
		t.Fatal(err)
	}
	want := srcLeader.store.View()
	from := src.follower(t)
	wait.For(t, from.id+" to apply", 10*time.Second, func() bool { return from.store.View().Index() >= want.Index() })

	body, info, err := src.client(t, from).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	saved, err := fsm.ReadSnapshot(body)
	if err != nil {
		t.Fatal(err)
	}
	if info.Peer != from.id || info.Index != from.store.View().Index() || !saved.SameRecords(want) {
		t.Fatalf("snapshot from %s (%+v) does not hold the source's records", from.id, info)
	}
	var snap strings.Builder
	if err := fsm.WriteSnapshot(&snap, saved); err != nil {
		t.Fatal(err)
	}

	dst := newCluster(t, 3, 31)
	dstLeader := dst.leader(t)
	if err := dstLeader.node.Commit(ctx, []fsm.Command{fsm.UpsertService(&fsm.Service{Namespace: "x", Name: "replaced", Type: fsm.TypeExternalName, ExternalName: "example.org"})}); err != nil {
		t.Fatal(err)
	}
	cl := dst.client(t, dst.follower(t))

	// A file that is not a snapshot is refused before Raft sees it.
	if _, err := cl.Restore(ctx, []byte("not a snapshot")); err == nil {
		t.Fatal("restore of garbage succeeded")
	} else {
		wantAPIError(t, err, http.StatusBadRequest, "not a kdnsd snapshot")
	}

	resp, err := cl.Restore(ctx, []byte(snap.String()))
	if err != nil {
		t.Fatal(err)
	}
	if resp.LeaderID != dstLeader.id || resp.Services != 40 || resp.EndpointSlices != 40 {
		t.Errorf("restore answer %+v", resp)
	}
	for _, r := range dst.reps {
		wait.For(t, r.id+" to hold the restored records", 15*time.Second, func() bool { return r.store.View().SameRecords(want) })
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Services != 40 || st.EndpointSlices != 40 {
		t.Errorf("status after restore %+v", st)
	}
}
