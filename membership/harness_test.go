package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/raftnode"
	"github.com/kdnsd/kdnsd/test/testenv"

	"github.com/kdnsd/kdnsd/test/wait"
)

// The cluster tests share one etcd + kube-apiserver (testenv.Get); the pure
// ones (planner, probe, versions) start none.
func TestMain(m *testing.M) { testenv.Main(m) }

const (
	stsName  = "kdnsd"
	appLabel = "app.kubernetes.io/name"
	selector = appLabel + "=kdnsd"
)

// cluster is one test's kdnsd StatefulSet: API objects in a namespace of its
// own, and real raftnode replicas on 127.0.0.x loopback addresses, all on the
// same Raft and status ports, as pods of a StatefulSet are.
type cluster struct {
	t          *testing.T
	admin      kubernetes.Interface
	kdnsd      kubeclient.Client // least privilege: deploy/statefulset/rbac.yaml
	ns         string
	raftPort   int
	statusPort int
	// httpProbe makes the replicas probe each other over HTTP (the default
	// Probe against a real /status server); otherwise they read each
	// other's nodes in process.
	httpProbe   bool
	deadTimeout time.Duration
	logs        *testLog

	mu    sync.Mutex
	peers map[string]*peer // by pod name
}

// peer is one kdnsd replica: store, Raft node, Membership, and (with
// httpProbe) a /status server.
type peer struct {
	c           *cluster
	name, ip    string
	dir         string
	voter       bool
	store       *fsm.Store
	node        *raftnode.Node
	counted     *countingNode
	mem         *Membership
	http        *http.Server
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	bootstrapEr chan error // Bootstrap's result
}

// countingNode counts what membership does with a node.
type countingNode struct {
	*raftnode.Node
	bootstraps atomic.Int32
	reads      atomic.Int32 // Servers calls: one per reconcile round and change
}

func (n *countingNode) Bootstrap(peers []raftnode.Peer) error {
	n.bootstraps.Add(1)
	return n.Node.Bootstrap(peers)
}

func (n *countingNode) Servers() ([]raftnode.ServerInfo, error) {
	n.reads.Add(1)
	return n.Node.Servers()
}

func newCluster(t *testing.T, httpProbe bool) *cluster {
	t.Helper()
	env := testenv.Get(t)
	admin, err := kubernetes.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	kdnsd, err := kubeclient.New(env.KdnsdConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		t: t, admin: admin, kdnsd: kdnsd, httpProbe: httpProbe,
		deadTimeout: time.Hour, logs: newTestLog(t), peers: map[string]*peer{},
	}
	ctx := context.Background()
	ns, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "membership-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.ns = ns.Name
	t.Cleanup(func() {
		admin.CoreV1().Namespaces().Delete(context.Background(), c.ns, metav1.DeleteOptions{})
	})
	ports := freePorts(t, 2, loopbackIPs)
	c.raftPort, c.statusPort = ports[0], ports[1]
	t.Cleanup(c.stopAll)
	return c
}

// loopbackIPs are the pod IPs tests use.
var loopbackIPs = []string{
	"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15",
	"127.0.0.21", "127.0.0.31",
}

func ipOf(ordinal int) string { return fmt.Sprintf("127.0.0.%d", 11+ordinal) }

// freePorts returns n ports free on every one of ips.
func freePorts(t *testing.T, n int, ips []string) []int {
	t.Helper()
	var ports []int
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt == 100 {
			t.Fatal("no port free on all test IPs")
		}
		l, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := !slices.Contains(ports, port)
		ls := []net.Listener{l}
		for _, ip := range ips[1:] {
			if !ok {
				break
			}
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			ports = append(ports, port)
		}
	}
	return ports
}

func (c *cluster) createStatefulSet(replicas int32) {
	c.t.Helper()
	labels := map[string]string{appLabel: "kdnsd"}
	_, err := c.admin.AppsV1().StatefulSets(c.ns).Create(context.Background(), &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: stsName},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:test"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) scale(replicas int32) {
	c.t.Helper()
	ctx := context.Background()
	s, err := c.admin.AppsV1().StatefulSets(c.ns).Get(ctx, stsName, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	s.Spec.Replicas = &replicas
	if _, err := c.admin.AppsV1().StatefulSets(c.ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// createPod creates a pod matching the selector, and gives it ip unless it
// is empty. No kubelet runs: the pod object is all there is.
func (c *cluster) createPod(name, ip string, voter bool) {
	c.t.Helper()
	labels := map[string]string{appLabel: "kdnsd"}
	if !voter {
		labels[VoterLabel] = "false"
	}
	_, err := c.admin.CoreV1().Pods(c.ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:test"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if ip != "" {
		c.setPodIP(name, ip)
	}
}

func (c *cluster) setPodIP(name, ip string) {
	c.t.Helper()
	ctx := context.Background()
	p, err := c.admin.CoreV1().Pods(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	if _, err := c.admin.CoreV1().Pods(c.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// deletePod deletes a pod and waits until it is gone (a pod bound to no
// node goes at once).
func (c *cluster) deletePod(name string) {
	c.t.Helper()
	ctx := context.Background()
	if err := c.admin.CoreV1().Pods(c.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		c.t.Fatal(err)
	}
	wait.For(c.t, "pod "+name+" to be gone", 10*time.Second, func() bool {
		_, err := c.admin.CoreV1().Pods(c.ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// start starts a replica for pod name at ip with the data in dir (a new
// directory when empty): Membership, Raft node, /status server (with
// httpProbe), Bootstrap, and Reconcile in every leadership term.
func (c *cluster) start(name, ip, dir string, voter bool) *peer {
	c.t.Helper()
	if dir == "" {
		dir = c.t.TempDir()
	}
	p := &peer{c: c, name: name, ip: ip, dir: dir, voter: voter, bootstrapEr: make(chan error, 1)}
	cfg := Config{
		Client: c.kdnsd, Namespace: c.ns, Selector: selector, StatefulSet: stsName,
		RaftPort: c.raftPort, StatusPort: c.statusPort, BootstrapExpect: 3,
		DeadServerTimeout: c.deadTimeout, Self: name, Voter: voter,
		Interval: 200 * time.Millisecond, ProbeTimeout: time.Second,
		Logger: c.logs.logger(name),
	}
	if !c.httpProbe {
		cfg.Probe = c.probe
	}
	mem, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.mem, p.cancel = mem, cancel
	if err := mem.Start(ctx); err != nil {
		cancel()
		c.t.Fatal(err)
	}
	store, err := fsm.Open(filepath.Join(dir, "fsm.db"), nil)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	node, err := raftnode.Start(raftnode.Config{
		ID: name, BindAddr: net.JoinHostPort(ip, strconv.Itoa(c.raftPort)),
		DataDir: dir, RaftLogLevel: "error", Discovered: mem.Addr, Logger: c.logs.logger(name),
	}, store)
	if err != nil {
		cancel()
		store.Close()
		c.t.Fatal(err)
	}
	p.store, p.node, p.counted = store, node, &countingNode{Node: node}
	if c.httpProbe {
		p.serveStatus()
	}
	p.wg.Go(func() { p.bootstrapEr <- mem.Bootstrap(ctx, p.counted) })
	p.wg.Go(func() {
		node.WhileLeader(ctx, func(term context.Context) { mem.Reconcile(term, p.counted) })
	})
	c.mu.Lock()
	c.peers[name] = p
	c.mu.Unlock()
	return p
}

// serveStatus serves /status as kdnsd does (the Raft status as JSON).
func (p *peer) serveStatus() {
	p.c.t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(p.ip, strconv.Itoa(p.c.statusPort)))
	if err != nil {
		p.c.t.Fatal(err)
	}
	node := p.node
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(admin.Status{Status: node.Status()})
	})
	p.http = &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go p.http.Serve(l)
}

// stop stops the replica like a pod going away: Bootstrap and Reconcile
// end, the node shuts down (a leader hands over first).
func (c *cluster) stop(name string) {
	c.t.Helper()
	c.mu.Lock()
	p := c.peers[name]
	delete(c.peers, name)
	c.mu.Unlock()
	if p == nil {
		return
	}
	if p.http != nil {
		p.http.Close()
	}
	p.cancel()
	p.wg.Wait()
	if err := p.node.Shutdown(); err != nil {
		c.t.Logf("shutdown %s: %v", name, err)
	}
	p.store.Close()
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	names := sortedNames(c.peers)
	c.mu.Unlock()
	for _, n := range names {
		c.stop(n)
	}
}

func (c *cluster) peer(name string) *peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[name]
}

// probe is the in-process Probe: it reads the node of the replica running
// at ip, as /status would.
func (c *cluster) probe(_ context.Context, name, ip string) (raftnode.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.peers {
		if p.ip == ip {
			if p.name != name {
				return raftnode.Status{}, fmt.Errorf("%s answers at %s, not %s", p.name, ip, name)
			}
			return p.node.Status(), nil
		}
	}
	return raftnode.Status{}, errors.New("connection refused")
}

// leader waits for a leader among the running replicas.
func (c *cluster) leader() *peer {
	c.t.Helper()
	var leader *peer
	wait.For(c.t, "a leader", 15*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		leader = nil
		for _, p := range c.peers {
			if p.node.IsLeader() {
				leader = p
			}
		}
		return leader != nil
	})
	return leader
}

// config is the leader's Raft configuration as "id=addr/voter|nonvoter",
// sorted.
func (c *cluster) config() []string {
	c.t.Helper()
	servers, err := c.leader().node.Servers()
	if err != nil {
		return nil
	}
	return describe(servers)
}

func describe(servers []raftnode.ServerInfo) []string {
	var out []string
	for _, s := range servers {
		kind := "voter"
		if !s.Voter {
			kind = "nonvoter"
		}
		out = append(out, s.ID+"="+s.Address+"/"+kind)
	}
	slices.Sort(out)
	return out
}

// addr is the Raft address of a replica at ip.
func (c *cluster) addr(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(c.raftPort)) }

// want is a configuration as config returns it, from "name@ip" (a voter)
// and "name@ip/nonvoter".
func (c *cluster) want(ids ...string) []string {
	var out []string
	for _, id := range ids {
		kind := "voter"
		name, ip, _ := strings.Cut(id, "@")
		if strings.HasSuffix(ip, "/nonvoter") {
			ip, kind = strings.TrimSuffix(ip, "/nonvoter"), "nonvoter"
		}
		out = append(out, name+"="+c.addr(ip)+"/"+kind)
	}
	slices.Sort(out)
	return out
}

// waitConfig waits until the leader's configuration is want.
func (c *cluster) waitConfig(timeout time.Duration, want []string) {
	c.t.Helper()
	var got []string
	if !wait.Poll(timeout, func() bool { got = c.config(); return slices.Equal(got, want) }) {
		c.t.Fatalf("raft configuration after %s:\n got %v\nwant %v", timeout, got, want)
	}
}

// commit commits a service record through the leader.
func (c *cluster) commit(name string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A leader can step down between c.leader() and Commit: then try the
	// next one.
	err := wait.Until(ctx, "a leader to commit "+name, func() (bool, error) {
		err := c.leader().node.Commit(ctx, []fsm.Command{fsm.UpsertService(&fsm.Service{
			Namespace: "default", Name: name, Type: fsm.TypeClusterIP,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		})})
		if errors.Is(err, raftnode.ErrNotLeader) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		c.t.Fatalf("commit %s: %v", name, err)
	}
}

func (p *peer) has(service string) bool {
	return p.store.View().Service(fsm.ServiceKey{Namespace: "default", Name: service}) != nil
}

// waitApplied waits until every running replica has the service.
func (c *cluster) waitApplied(service string) {
	c.t.Helper()
	c.mu.Lock()
	peers := make([]*peer, 0, len(c.peers))
	for _, p := range c.peers {
		peers = append(peers, p)
	}
	c.mu.Unlock()
	for _, p := range peers {
		wait.For(c.t, p.name+" to apply "+service, 10*time.Second, func() bool { return p.has(service) })
	}
}

// bootstrapped waits for the replica's Bootstrap to return and checks it
// returned nil.
func (p *peer) bootstrapped(timeout time.Duration) {
	p.c.t.Helper()
	select {
	case err := <-p.bootstrapEr:
		if err != nil {
			p.c.t.Fatalf("%s: Bootstrap: %v", p.name, err)
		}
		p.bootstrapEr <- nil // for later calls
	case <-time.After(timeout):
		p.c.t.Fatalf("%s: Bootstrap still waiting after %s: %s", p.name, timeout, p.mem.waitingReason())
	}
}

// quorumWatch samples the leader's configuration until stopped and fails
// the test if the replicas running are ever not a majority of its voters,
// or if one of the always-wanted voters leaves it.
func (c *cluster) quorumWatch(always ...string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			c.mu.Lock()
			var servers []raftnode.ServerInfo
			running := map[string]bool{}
			for _, p := range c.peers {
				running[p.name] = true
				if servers == nil && p.node.IsLeader() {
					servers, _ = p.node.Servers()
				}
			}
			c.mu.Unlock()
			if servers == nil {
				continue
			}
			voters, up := 0, 0
			ids := map[string]bool{}
			for _, s := range servers {
				ids[s.ID] = true
				if s.Voter {
					voters++
					if running[s.ID] {
						up++
					}
				}
			}
			mu.Lock()
			if up < voters/2+1 {
				failures = append(failures, fmt.Sprintf("only %d of %d voters running: %v", up, voters, describe(servers)))
			}
			for _, id := range always {
				if !ids[id] {
					failures = append(failures, fmt.Sprintf("%s left the configuration: %v", id, describe(servers)))
				}
			}
			mu.Unlock()
		}
	})
	return func() {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(failures) > 0 {
			c.t.Errorf("%d bad configurations observed, first: %s", len(failures), failures[0])
		}
	}
}

// testLog sends the replicas' logs to the test's output until it ends.
type testLog struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func newTestLog(t *testing.T) *testLog {
	l := &testLog{w: t.Output()}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(b), nil
	}
	return l.w.Write(b)
}

func (l *testLog) logger(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo})).With("pod", name)
}
