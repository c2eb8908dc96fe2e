package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/admin/admintest"

	"github.com/kdnsd/kdnsd/test/wait"
)

// TestRaftMutualTLS: replicas with certificates of the cluster CA replicate
// over mutual TLS; a replica whose certificate comes from another CA is
// added to the configuration but never receives the log.
func TestRaftMutualTLS(t *testing.T) {
	clusterCA := admintest.NewCA(t, "raft")
	cert, key := clusterCA.Issue(t, "kdnsd")
	c, err := NewOnHosts(bin, env.KdnsdKubeconfig, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	c.ExtraArgs = []string{"--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", clusterCA.CertFile}
	c.AdminFlags = []string{} // loopback admin API without auth: the test's own
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	cs := admin(t)
	ns := namespace(t, cs)
	ip := createService(t, cs, ns, "over-tls").String()
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer over TLS", 20*time.Second, func() bool { return answersA(r, fqdn("over-tls", ns), ip) })
	}

	// Two read replicas ask to join: one with a certificate of the
	// cluster's CA, which receives the log, and an intruder with a
	// certificate of its own CA, which does not.
	otherCA := admintest.NewCA(t, "other")
	badCert, badKey := otherCA.Issue(t, "intruder")
	for _, host := range []string{"127.0.0.18", "127.0.0.19"} {
		if err := c.AddOnHost(host); err != nil {
			t.Fatal(err)
		}
	}
	good, intruder := c.Replicas[3], c.Replicas[4]
	good.ReadReplica, intruder.ReadReplica = true, true
	intruder.ExtraArgs = []string{"--raft-tls-cert", badCert, "--raft-tls-key", badKey, "--raft-tls-ca", otherCA.CertFile}
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
