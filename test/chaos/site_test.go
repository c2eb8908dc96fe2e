package chaos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	adminapi "github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// site is where the scenarios' replicas run and how the suite faults them:
// processes the suite starts in network namespaces of its own next to a
// test API server (localSite), or the pods of kdnsd's StatefulSet on the
// real node of test/e2e (nodeSite, -chaos.node). The scenarios, the
// workload and the checker are the same on both.
type site interface {
	// run describes a run of profile here, for the report.
	run(profile string) Run
	// admin is the API server's client configuration with every right.
	admin() *rest.Config
	// deploy returns sc's cluster, its voters running and serving.
	deploy(t *testing.T, sc scenario, newNamespace func(prefix string) string) deployment
	// kill ends r's kdnsd with SIGKILL, stop with SIGTERM; both return
	// once it has exited. start runs it again, returns once it runs, and
	// says when its process started.
	kill(r *cluster.Replica) error
	stop(r *cluster.Replica) error
	start(r *cluster.Replica) (time.Time, error)
	// wipe kills r's kdnsd and empties its data directory; start runs it
	// again, empty.
	wipe(r *cluster.Replica) error
	// pause stops r's process with SIGSTOP, resume continues it.
	pause(r *cluster.Replica) error
	resume(r *cluster.Replica) error
	// cut drops, in r's network namespace, what comes from peers, and with
	// both also what goes to them; heal removes that.
	cut(r *cluster.Replica, peers []*cluster.Replica, both bool) error
	heal(r *cluster.Replica) error
	stopAPIServer() error
	// startAPIServer returns once the API server is ready; a no-op when
	// it runs.
	startAPIServer(ctx context.Context) error
}

// deployment is one scenario's cluster. sts (the StatefulSet a cluster
// with discovery plays) and disks are the local site's, for the scenarios
// whose layout asks for them.
type deployment struct {
	c     *cluster.Cluster
	sts   *cluster.StatefulSet
	disks *disks
}

// leaderOf asks every replica at once and returns the one that leads in
// the highest term, or nil; a stopped replica only costs ctx's time.
func leaderOf(ctx context.Context, rs []*cluster.Replica) *cluster.Replica {
	sts := make([]adminapi.Status, len(rs))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { sts[i], errs[i] = r.Status(ctx) })
	}
	wg.Wait()
	var l *cluster.Replica
	var term uint64
	for i, r := range rs {
		if errs[i] == nil && sts[i].State == "Leader" && sts[i].Term >= term {
			l, term = r, sts[i].Term
		}
	}
	return l
}

// localSite runs every replica as a process of the suite, each in a
// network namespace of its own (netns_test.go), against the test API
// server, reached through a proxy on the suite's bridge.
type localSite struct {
	env        *testenv.Env
	kubeconfig string   // the kdnsd identity's, through the proxy
	raftFlags  []string // the Raft CA every replica issues its leaf from
}

func newLocalSite(t *testing.T) *localSite {
	env := testenv.Get(t)
	u, err := url.Parse(env.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy, stopProxy, err := apiProxy(net.JoinHostPort(u.Hostname(), u.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopProxy)
	return &localSite{env: env, kubeconfig: proxiedKubeconfig(t, env, proxy), raftFlags: raftCA(t)}
}

func (s *localSite) run(profile string) Run {
	return Run{Profile: profile, Command: localCommand(profile, *voters), Setting: localSetting}
}

func (s *localSite) admin() *rest.Config { return s.env.AdminConfig() }

func (s *localSite) deploy(t *testing.T, sc scenario, newNamespace func(string) string) deployment {
	dir := t.TempDir()
	c, err := cluster.NewOnHosts(bin, s.kubeconfig, dir, *voters)
	if err != nil {
		t.Fatal(err)
	}
	for range sc.layout.grow {
		if err := c.AddOnHost(replicaIP(len(c.Replicas))); err != nil {
			t.Fatal(err)
		}
	}
	c.ExtraArgs = s.raftFlags
	dep := deployment{c: c}
	if sc.layout.grow > 0 {
		cs, err := kubernetes.NewForConfig(s.admin())
		if err != nil {
			t.Fatal(err)
		}
		dep.sts = cluster.NewStatefulSet(t, cs, newNamespace(sc.name+"-sts"), int32(*voters))
		c.Namespace = dep.sts.Namespace
		c.ExtraArgs = append(slices.Clone(s.raftFlags), "--bootstrap-expect", fmt.Sprint(*voters))
	}
	if sc.layout.disks {
		if why := disksUnavailable(); why != "" {
			t.Skip(why)
		}
		if dep.disks, err = newDisks(dir, len(c.Replicas)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dep.disks.close) // after the replicas are killed (cleanups run last first)
	}
	for i, r := range c.Replicas {
		r.Move(replicaIP(i))
		cgroup := ""
		if dep.disks != nil {
			r.DataDir, cgroup = dep.disks.dataDir(i, r.ID), dep.disks.cgroups[i]
		}
		if r.Bin, err = nw.wrapper(dir, i, bin, cgroup); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.StopAll()
		for _, r := range c.Replicas {
			// StopAll signals; the disks can be unmounted once every
			// replica has exited.
			wait.Poll(10*time.Second, func() bool { return !r.Running() })
		}
		if *logsDir != "" {
			for _, r := range c.Replicas {
				if err := copyFile(r.LogPath, filepath.Join(*logsDir, sc.name+"-"+r.ID+".log")); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("keep %s's log: %v", r.ID, err)
				}
			}
		}
		if t.Failed() {
			for _, r := range c.Replicas {
				t.Logf("--- %s log tail:\n%s", r.ID, r.LogTail(30))
			}
		}
	})
	for _, r := range c.Replicas[:*voters] {
		if dep.sts != nil {
			dep.sts.RunPod(r)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return dep
}

func (s *localSite) kill(r *cluster.Replica) error { r.Kill(); return nil }
func (s *localSite) stop(r *cluster.Replica) error { r.Stop(); return nil }
func (s *localSite) start(r *cluster.Replica) (time.Time, error) {
	now := time.Now()
	return now, r.Start()
}

func (s *localSite) wipe(r *cluster.Replica) error   { r.Kill(); return os.RemoveAll(r.DataDir) }
func (s *localSite) pause(r *cluster.Replica) error  { return r.Pause() }
func (s *localSite) resume(r *cluster.Replica) error { return r.Resume() }

// The replicas' namespaces are numbered as their addresses: replica i is
// at replicaIP(i), in nw's namespace i.
func (s *localSite) cut(r *cluster.Replica, peers []*cluster.Replica, both bool) error {
	var ips []string
	for _, p := range peers {
		ips = append(ips, p.Host())
	}
	return nw.cut(localIndex(r), ips, both)
}

func (s *localSite) heal(r *cluster.Replica) error { return nw.heal(localIndex(r)) }

func localIndex(r *cluster.Replica) int {
	ip := net.ParseIP(r.Host()).To4()
	return int(ip[3]) - firstHost
}

func (s *localSite) stopAPIServer() error { return s.env.StopAPIServer() }
func (s *localSite) startAPIServer(ctx context.Context) error {
	return s.env.StartAPIServer(ctx)
}
