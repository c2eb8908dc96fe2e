package cluster

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftauth"
	"github.com/kdnsd/kdnsd/test/raftwire"
	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

const testRaftDomain = "kdnsd-peers.test.svc"

// raftCA runs `kdnsd certs init` as an operator does and returns the flags
// that make a replica issue its own Raft certificate from that CA.
func raftCA(t *testing.T) (flags []string, caCert, caKey string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "raft-ca")
	if _, err := kdnsdCLI("certs", "init", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := kdnsdCLI("certs", "init", dir); err == nil {
		t.Fatal("a second certs init replaced the CA")
	}
	caCert, caKey = filepath.Join(dir, raftauth.CACertFile), filepath.Join(dir, raftauth.CAKeyFile)
	return []string{"--raft-tls-ca", caCert, "--raft-tls-ca-key", caKey, "--raft-tls-domain", testRaftDomain}, caCert, caKey
}

// startTLSCluster starts 3 replicas that issue their own leaves from one CA.
func startTLSCluster(t *testing.T) (c *Cluster, caCert, caKey string) {
	t.Helper()
	flags, caCert, caKey := raftCA(t)
	c, err := NewOnHosts(bin, testenv.Get(t).KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	c.ExtraArgs = flags
	c.AdminFlags = []string{} // loopback admin API without auth: the test's own
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return c, caCert, caKey
}

// TestRaftMutualTLS: replicas with leaves of the cluster CA replicate over
// mutual TLS; a replica whose CA is another never receives the log.
func TestRaftMutualTLS(t *testing.T) {
	c, _, _ := startTLSCluster(t)
	cs := admin(t)
	ns := namespace(t, cs)
	serviceOnAll(t, c, cs, ns, "over-tls")

	// Two read replicas ask to join: one issuing its leaf from the
	// cluster's CA, which receives the log, and an intruder whose CA is its
	// own, which does not.
	otherFlags, _, _ := raftCA(t)
	for _, host := range []string{"127.0.0.18", "127.0.0.19"} {
		if err := c.AddOnHost(host); err != nil {
			t.Fatal(err)
		}
	}
	good, intruder := c.Replicas[3], c.Replicas[4]
	good.ReadReplica, intruder.ReadReplica = true, true
	intruder.ExtraArgs = otherFlags
	leader := c.Leader(context.Background())
	for _, r := range []*Replica{good, intruder} {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		status(t, r) // up and serving
		if _, err := kdnsdCLI("peers", "add", r.ID, r.RaftAddr, "--non-voter", "--server", "http://"+leader.AdminAddr); err != nil {
			t.Fatal(err)
		}
	}
	later := createService(t, cs, ns, "after-join").String()
	for _, r := range []*Replica{c.Replicas[0], c.Replicas[1], c.Replicas[2], good} {
		wait.For(t, r.ID+" to answer", 20*time.Second, func() bool { return answersA(r, fqdn("after-join", ns), later) })
	}
	if wait.Poll(3*time.Second, func() bool { return answersA(intruder, fqdn("after-join", ns), later) }) {
		t.Fatal("a replica with a foreign certificate received the log")
	}
	if !intruder.Running() {
		t.Fatal("the intruder exited; the check above proved nothing")
	}
}

// TestRaftPlaneAttacks plays a pod inside the cluster that reaches the Raft
// port of a follower and tries to repoint a service: a forged AppendEntries
// (a term far ahead, an upsert of the service with a new cluster IP) and a
// forged RequestVote, in plaintext and with a certificate of the cluster's
// own CA issued for another server ID. Before the Raft plane was
// authenticated the plaintext AppendEntries alone was applied.
func TestRaftPlaneAttacks(t *testing.T) {
	c, caCert, caKey := startTLSCluster(t)
	cs := admin(t)
	ns := namespace(t, cs)
	ip := serviceOnAll(t, c, cs, ns, "target")
	leader := c.Leader(context.Background())
	var victim *Replica
	for _, r := range c.Replicas {
		if r != leader {
			victim = r
		}
	}
	st := status(t, victim)
	data, err := fsm.Encode([]fsm.Command{fsm.UpsertService(&fsm.Service{
		Namespace: ns, Name: "target", Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.66.66")},
	})})
	if err != nil {
		t.Fatal(err)
	}
	appendEntries := func(claimID, claimAddr string) *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{
			RPCHeader: raftwire.Header(claimID, claimAddr), Term: st.Term + 100,
			PrevLogEntry: st.CommitIndex, PrevLogTerm: st.Term,
			Entries:           []*raft.Log{{Index: st.CommitIndex + 1, Term: st.Term + 100, Type: raft.LogCommand, Data: data}},
			LeaderCommitIndex: st.CommitIndex + 1,
		}
	}
	requestVote := &raft.RequestVoteRequest{RPCHeader: raftwire.Header(leader.ID, leader.RaftAddr), Term: st.Term + 100, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40}
	var resp raft.AppendEntriesResponse

	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
		typ  byte
		req  any
	}{
		{"plaintext AppendEntries", func() (net.Conn, error) { return net.Dial("tcp", victim.RaftAddr) },
			raftwire.AppendEntries, appendEntries(leader.ID, leader.RaftAddr)},
		{"plaintext RequestVote", func() (net.Conn, error) { return net.Dial("tcp", victim.RaftAddr) },
			raftwire.RequestVote, requestVote},
		{"CA-signed certificate of another server, AppendEntries as the leader", attackerDial(t, caCert, caKey, victim.RaftAddr),
			raftwire.AppendEntries, appendEntries(leader.ID, leader.RaftAddr)},
		{"CA-signed certificate of another server, RequestVote as the leader", attackerDial(t, caCert, caKey, victim.RaftAddr),
			raftwire.RequestVote, requestVote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.dial()
			if err != nil {
				return // refused at the handshake: nothing reached raft
			}
			defer conn.Close()
			if err := raftwire.Send(conn, tc.typ, tc.req, &resp); err == nil {
				t.Fatalf("answered: %+v", resp)
			}
		})
	}
	if n := rejectedRPCs(t, victim, "identity"); n < 2 {
		t.Errorf("kdnsd_raft_rpc_rejected_total{reason=identity} = %d, want at least 2", n)
	}
	for _, r := range c.Replicas {
		if !answersA(r, fqdn("target", ns), ip) {
			t.Errorf("%s no longer answers %s", r.ID, ip)
		}
	}
	// An election of its own may move the term on a loaded machine; the
	// forged requests would have moved it 100 ahead.
	if now := status(t, victim); now.Term >= st.Term+100 {
		t.Errorf("the victim took the forged term: %d → %d", st.Term, now.Term)
	}
}

// attackerDial returns a dialer presenting a leaf of the cluster's CA for
// kdnsd-9, a server that is not in the cluster.
func attackerDial(t *testing.T, caCert, caKey, addr string) func() (net.Conn, error) {
	plane, err := raftauth.NewIssuing(caCert, caKey, "kdnsd-9", testRaftDomain, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return func() (net.Conn, error) { return tls.Dial("tcp", addr, plane.Config()) }
}

var rejectedLine = regexp.MustCompile(`(?m)^kdnsd_raft_rpc_rejected_total\{reason="([a-z_]+)"\} (\d+)$`)

// rejectedRPCs reads kdnsd_raft_rpc_rejected_total{reason} from r's /metrics.
func rejectedRPCs(t *testing.T, r *Replica, reason string) int {
	t.Helper()
	resp, err := http.Get("http://" + r.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, m := range rejectedLine.FindAllStringSubmatch(string(body), -1) {
		if m[1] == reason {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	t.Fatalf("no kdnsd_raft_rpc_rejected_total{reason=%q} in /metrics", reason)
	return 0
}
