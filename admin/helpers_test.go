package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/admin/admintest"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"

	"github.com/kdnsd/kdnsd/test/wait"
)

const testToken = "s3cret-admin-token-for-tests"

// replica is one member of an in-process test cluster: a real store, a real
// Raft node on its own loopback IP, and an admin Server over HTTPS on the
// port every replica of the cluster shares, as pods of a StatefulSet do.
type replica struct {
	id, ip, raftAddr, adminAddr, dir string
	store                            *fsm.Store
	node                             *raftnode.Node
	stop                             func()
}

type cluster struct {
	ca        *admintest.CA
	tokenFile string
	// client certificate and key for the tests' own requests
	clientCert, clientKey string
	reps                  []*replica
}

func listenAddr(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// sharedPort finds a port free on every ip.
func sharedPort(t testing.TB, ips []string) string {
	t.Helper()
	for range 20 {
		_, port, _ := net.SplitHostPort(listenAddr(t, ips[0]))
		free := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on every test IP")
	return ""
}

// newCluster starts n replicas on 127.0.0.<first>…, bootstrapped together.
func newCluster(t testing.TB, n, first int) *cluster {
	t.Helper()
	c := &cluster{ca: admintest.NewCA(t, "kdnsd-admin"), tokenFile: admintest.WriteToken(t, testToken)}
	c.clientCert, c.clientKey = c.ca.Issue(t, "operator")
	var ips []string
	for i := range n {
		ips = append(ips, "127.0.0."+strconv.Itoa(first+i))
	}
	port := sharedPort(t, ips)
	var peers []raftnode.Peer
	for i, ip := range ips {
		r := &replica{id: fmt.Sprintf("r%d", i), ip: ip, raftAddr: listenAddr(t, ip), adminAddr: net.JoinHostPort(ip, port), dir: t.TempDir()}
		peers = append(peers, raftnode.Peer{ID: r.id, Addr: r.raftAddr})
		c.reps = append(c.reps, r)
	}
	for _, r := range c.reps {
		c.start(t, r, peers, true)
	}
	for _, r := range c.reps {
		c.waitUp(t, r)
	}
	return c
}

// start starts r's store and node, and its admin server if withAdmin.
func (c *cluster) start(t testing.TB, r *replica, peers []raftnode.Peer, withAdmin bool) {
	t.Helper()
	store, err := fsm.Open(filepath.Join(r.dir, "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	node, err := raftnode.Start(raftnode.Config{ID: r.id, BindAddr: r.raftAddr, DataDir: r.dir, RaftLogLevel: "error"}, store)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	// Every member of these clusters starts together, new or restarted.
	if peers != nil {
		if err := node.Bootstrap(peers); err != nil && !errors.Is(err, raftnode.ErrCantBootstrap) {
			node.Shutdown()
			store.Close()
			t.Fatal(err)
		}
	}
	r.store, r.node = store, node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if withAdmin {
		cert, key := c.ca.Issue(t, r.id, r.ip)
		peerAddr, err := admin.SamePort(r.adminAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := admin.NewServer(admin.Config{
			Addr: r.adminAddr, TLSCert: cert, TLSKey: key, ClientCA: c.ca.CertFile, TokenFile: c.tokenFile,
			Node: node, Views: store, PeerAdminAddr: peerAddr,
			WatcherState: func() string { return "test" },
		})
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- srv.Serve(ctx) }()
	} else {
		done <- nil
	}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s admin server: %v", r.id, err)
		}
		node.Shutdown()
		store.Close()
	}
	t.Cleanup(r.stop)
}

// client returns a client of r's admin API with the cluster's credentials.
func (c *cluster) client(t testing.TB, r *replica) *admin.Client {
	t.Helper()
	return c.clientWith(t, r, admin.ClientConfig{TokenFile: c.tokenFile, Cert: c.clientCert, Key: c.clientKey})
}

func (c *cluster) clientWith(t testing.TB, r *replica, cfg admin.ClientConfig) *admin.Client {
	t.Helper()
	cfg.Server = "https://" + r.adminAddr
	cfg.CACert = c.ca.CertFile
	cl, err := admin.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *cluster) waitUp(t testing.TB, r *replica) {
	t.Helper()
	cl := c.client(t, r)
	wait.For(t, r.id+" admin API", 10*time.Second, func() bool {
		_, err := cl.Status(context.Background())
		return err == nil
	})
}

func (c *cluster) leader(t testing.TB) *replica {
	t.Helper()
	var leader *replica
	wait.For(t, "a leader every replica knows", 10*time.Second, func() bool {
		leader = nil
		for _, r := range c.reps {
			if r.node.IsLeader() {
				leader = r
			}
		}
		if leader == nil {
			return false
		}
		for _, r := range c.reps {
			if id, _ := r.node.Leader(); id != leader.id {
				return false
			}
		}
		return true
	})
	return leader
}

func (c *cluster) follower(t testing.TB) *replica {
	t.Helper()
	leader := c.leader(t)
	for _, r := range c.reps {
		if r != leader {
			return r
		}
	}
	t.Fatal("no follower")
	return nil
}

func (c *cluster) byID(id string) *replica {
	for _, r := range c.reps {
		if r.id == id {
			return r
		}
	}
	return nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantAPIError checks err is an API error with status code whose message
// contains want.
func wantAPIError(t testing.TB, err error, code int, want string) *admin.Error {
	t.Helper()
	var apiErr *admin.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T), want an API error %d", err, err, code)
	}
	if apiErr.StatusCode != code || !strings.Contains(apiErr.Message, want) {
		t.Fatalf("error %d %q, want %d containing %q", apiErr.StatusCode, apiErr.Message, code, want)
	}
	return apiErr
}
