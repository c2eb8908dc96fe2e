package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/e2e/node"
	"github.com/kdnsd/kdnsd/test/wait"
)

// nodeSite is the real node of test/e2e (make chaos-node: run.sh brings it
// up and runs the suite inside its network namespace): the replicas are
// the pods of deploy/statefulset, installed once as an operator installs
// it, on a real kubelet. A fault hits the kdnsd process of a pod, found on
// the node by its POD_NAME: kill -9 and SIGTERM end it and the kubelet
// restarts the container (start waits for that), SIGSTOP and SIGCONT hang
// and continue it, a partition is iptables rules in the pod's network
// namespace, and the API server outage stops the node's kube-apiserver.
// Every scenario runs on the same pods, with a namespace of its own for
// the workload's objects.
type nodeSite struct {
	env node.Env
	cs  kubernetes.Interface
	cfg *rest.Config

	mu      sync.Mutex
	killed  map[string]int // replica → the PID kill or stop ended
	apiDown bool
}

// podsTimeout bounds the wait for the StatefulSet's pods to be Ready: the
// kubelet may hold a container that exited often in its crash back-off.
const podsTimeout = 3 * time.Minute

func newNodeSite(t *testing.T) *nodeSite {
	e, err := node.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := e.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Install(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply -k deploy/statefulset:\n%s", out)
	if _, err := e.Kubectl(t.Context(), "-n", node.Namespace, "scale", "statefulset", "kdnsd", fmt.Sprintf("--replicas=%d", *voters)); err != nil {
		t.Fatal(err)
	}
	return &nodeSite{env: e, cs: cs, cfg: cfg, killed: map[string]int{}}
}

func (s *nodeSite) run(profile string) Run {
	cmd := "make chaos-node"
	if profile != "short" {
		cmd += " CHAOS_NODE_PROFILE=" + profile
	}
	return Run{Profile: profile, Command: cmd, Setting: "On the real single-node Kubernetes of `make e2e` (kubelet, containerd, runc, kube-proxy,\n" +
		"in a private network namespace): the replicas are the pods of deploy/statefulset as an operator installs it, kill -9 and\n" +
		"SIGSTOP hit a pod's kdnsd process (the kubelet restarts a killed container), partitions are iptables rules in the pod's\n" +
		"network namespace, the API server outage stops the node's kube-apiserver; the scenarios that need more than the\n" +
		"StatefulSet's pods (scale, slow disk) run only locally. Raft over mutual TLS between the pods,"}
}

func (s *nodeSite) admin() *rest.Config { return s.cfg }

// deploy waits for the StatefulSet's pods to be Ready and returns them as
// replicas, addressed by pod IP.
func (s *nodeSite) deploy(t *testing.T, sc scenario, _ func(string) string) deployment {
	var pods []corev1.Pod
	wait.For(t, fmt.Sprintf("%d Ready kdnsd pods", *voters), podsTimeout, func() bool {
		list, err := s.cs.CoreV1().Pods(node.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: node.Selector})
		if err != nil || len(list.Items) != *voters {
			return false
		}
		for _, p := range list.Items {
			if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(p) {
				return false
			}
		}
		pods = list.Items
		return true
	})
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	c := &cluster.Cluster{Zone: "cluster.local."}
	for _, p := range pods {
		c.Replicas = append(c.Replicas, &cluster.Replica{
			ID:       p.Name,
			RaftAddr: net.JoinHostPort(p.Status.PodIP, "7000"),
			DNSAddr:  net.JoinHostPort(p.Status.PodIP, "53"),
			HTTPAddr: net.JoinHostPort(p.Status.PodIP, "8080"),
		})
	}
	deployed := time.Now()
	// A scenario that fails mid-fault must not leave it for the next.
	t.Cleanup(func() {
		for _, r := range c.Replicas {
			if err := s.heal(r); err != nil {
				t.Logf("heal %s: %v", r.ID, err)
			}
			if p, ok := node.FindKdnsd(r.ID); ok {
				syscall.Kill(p.PID, syscall.SIGCONT)
			}
		}
		if err := s.startAPIServer(context.Background()); err != nil {
			t.Errorf("restart the API server: %v", err)
		}
		if *logsDir != "" {
			for _, r := range c.Replicas {
				s.keepLogs(t, sc.name, r.ID, deployed)
			}
		}
		if t.Failed() {
			for _, r := range c.Replicas {
				out, _ := s.env.Kubectl(context.Background(), "-n", node.Namespace, "logs", "--tail=30", r.ID)
				t.Logf("--- %s log tail:\n%s", r.ID, out)
			}
		}
	})
	for _, r := range c.Replicas {
		wait.For(t, r.ID+" to answer", rejoinTimeout, func() bool {
			return probe(r, "kubernetes.default.svc.cluster.local.").Rcode == dns.RcodeSuccess
		})
	}
	return deployment{c: c}
}

// keepLogs writes what pod's kdnsd containers logged since `since` to
// -chaos.logs as <scenario>-<pod>.log, and the container that ran before
// the current one (the pods outlive scenarios; a kill restarts the
// container) as <scenario>-<pod>-previous.log.
func (s *nodeSite) keepLogs(t *testing.T, scenario, pod string, since time.Time) {
	for suffix, previous := range map[string]bool{"": false, "-previous": true} {
		args := []string{"-n", node.Namespace, "logs", "--timestamps", "--since-time=" + since.UTC().Format(time.RFC3339), pod}
		if previous {
			args = append(args, "--previous")
		}
		out, err := s.env.Kubectl(context.Background(), args...)
		if err != nil {
			if !previous { // there may be no previous container
				t.Errorf("keep %s's log: %v", pod, err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(*logsDir, scenario+"-"+pod+suffix+".log"), []byte(out), 0o644); err != nil {
			t.Errorf("keep %s's log: %v", pod, err)
		}
	}
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// process is r's running kdnsd process on the node.
func (s *nodeSite) process(r *cluster.Replica) (node.Process, error) {
	p, ok := node.FindKdnsd(r.ID)
	if !ok {
		return p, fmt.Errorf("no kdnsd process of pod %s on the node", r.ID)
	}
	return p, nil
}

func (s *nodeSite) signal(r *cluster.Replica, sig syscall.Signal) error {
	p, err := s.process(r)
	if err != nil {
		return err
	}
	return syscall.Kill(p.PID, sig)
}

// end signals r's process and waits for it to be gone.
func (s *nodeSite) end(r *cluster.Replica, sig syscall.Signal) error {
	p, err := s.process(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.killed[r.ID] = p.PID
	s.mu.Unlock()
	if err := syscall.Kill(p.PID, sig); err != nil {
		return err
	}
	if !wait.Poll(time.Minute, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", p.PID))
		return os.IsNotExist(err)
	}) {
		return fmt.Errorf("%s: process %d still there a minute after %v", r.ID, p.PID, sig)
	}
	return nil
}

func (s *nodeSite) kill(r *cluster.Replica) error { return s.end(r, syscall.SIGKILL) }

// stop ends r with SIGTERM and fails when kdnsd took longer than its
// lameduck period and shutdown budget (5 s + 20 s, cmd/kdnsd): it then
// wrote its goroutines' stacks to its log (kept with -chaos.logs) and
// exited on its own.
func (s *nodeSite) stop(r *cluster.Replica) error {
	began := time.Now()
	if err := s.end(r, syscall.SIGTERM); err != nil {
		return err
	}
	if took := time.Since(began); took > maxShutdown {
		return fmt.Errorf("%s took %s to exit after SIGTERM (more than %s): its shutdown hung; the stacks are in its container's log", r.ID, took.Round(time.Second), maxShutdown)
	}
	return nil
}

// maxShutdown is kdnsd's lameduck period and shutdown budget, with a margin.
const maxShutdown = 27 * time.Second

// start waits for the kubelet to have restarted r's container: a kdnsd
// process of its pod other than the one that ended, which it may have
// started well before start is called.
func (s *nodeSite) start(r *cluster.Replica) (time.Time, error) {
	s.mu.Lock()
	old := s.killed[r.ID]
	s.mu.Unlock()
	var p node.Process
	if !wait.Poll(podsTimeout, func() bool {
		var ok bool
		p, ok = node.FindKdnsd(r.ID)
		return ok && p.PID != old
	}) {
		return time.Time{}, fmt.Errorf("the kubelet did not restart %s's container within %s", r.ID, podsTimeout)
	}
	return p.Started, nil
}

// wipe stops r's process, empties its data directory (the pod's volume,
// seen through the process's root) while the files are still open, then
// kills it: the kubelet restarts the container on an empty volume.
func (s *nodeSite) wipe(r *cluster.Replica) error {
	p, err := s.process(r)
	if err != nil {
		return err
	}
	if err := syscall.Kill(p.PID, syscall.SIGSTOP); err != nil {
		return err
	}
	dir := fmt.Sprintf("/proc/%d/root%s", p.PID, dataDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return s.kill(r)
}

// dataDir is where deploy/statefulset mounts a pod's volume (KDNSD_DATA_DIR).
const dataDir = "/var/lib/kdnsd"

func (s *nodeSite) pause(r *cluster.Replica) error  { return s.signal(r, syscall.SIGSTOP) }
func (s *nodeSite) resume(r *cluster.Replica) error { return s.signal(r, syscall.SIGCONT) }

// in runs argv in the network namespace of r's pod.
func (s *nodeSite) in(r *cluster.Replica) (func(argv ...string) []string, error) {
	p, err := s.process(r)
	if err != nil {
		return nil, err
	}
	return func(argv ...string) []string {
		return append([]string{"nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", p.PID), "--"}, argv...)
	}, nil
}

func (s *nodeSite) cut(r *cluster.Replica, peers []*cluster.Replica, both bool) error {
	in, err := s.in(r)
	if err != nil {
		return err
	}
	var ips []string
	for _, p := range peers {
		ips = append(ips, p.Host())
	}
	return runAll(cutSteps(in, ips, both))
}

func (s *nodeSite) heal(r *cluster.Replica) error {
	in, err := s.in(r)
	if err != nil {
		return err
	}
	return runAll(healSteps(in))
}

func (s *nodeSite) stopAPIServer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiDown = true
	return s.env.RunScript(context.Background(), "apiserver", "stop")
}

func (s *nodeSite) startAPIServer(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.apiDown {
		return nil
	}
	if err := s.env.RunScript(ctx, "apiserver", "start"); err != nil {
		return err
	}
	// The pods reach the API server through the kubernetes Service, which
	// routes again only once kube-apiserver has put its address back in
	// the Service's endpoints and kube-proxy has its rules again: the
	// outage lasts until then. The node's own namespace was seen to reach
	// it 78 s before the pods did (a CI run, 2026-11-30), so the check is
	// made from every kdnsd pod's network namespace: a TCP connection to
	// the Service (refused while it has no endpoint).
	if !wait.Poll(podsTimeout, s.podsReachAPI) {
		return fmt.Errorf("the kubernetes Service (%s) does not reach the API server from the pods %s after it started", kubernetesService, podsTimeout)
	}
	s.apiDown = false
	return nil
}

// kubernetesService is the ClusterIP of the kubernetes Service on the node.
const kubernetesService = "10.96.0.1:443"

// podsReachAPI reports whether a TCP connection to kubernetesService
// succeeds from the network namespace of every kdnsd pod running now.
func (s *nodeSite) podsReachAPI() bool {
	host, port, _ := strings.Cut(kubernetesService, ":")
	for i := range *voters {
		p, ok := node.FindKdnsd(fmt.Sprintf("kdnsd-%d", i))
		if !ok {
			continue // not running: nothing to reach from
		}
		connect := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", p.PID), "--",
			"timeout", "1", "bash", "-c", fmt.Sprintf(": </dev/tcp/%s/%s", host, port))
		if connect.Run() != nil {
			return false
		}
	}
	return true
}
