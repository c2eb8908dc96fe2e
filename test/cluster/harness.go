// Package cluster starts and stops real kdnsd processes for multi-process
// tests and for `make run`: each replica is the built binary with its own
// data dir and loopback ports, and every process is killed and every file
// removed on cleanup.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	adminapi "github.com/kdnsd/kdnsd/admin"
)

// Replica is one kdnsd process and everything needed to start it again the
// same way.
type Replica struct {
	ID       string
	RaftAddr string
	DNSAddr  string
	HTTPAddr string
	// ReadReplica makes the replica a non-voter (--voter=false) that waits,
	// without --peers, to be added by the leader.
	ReadReplica bool
	// ExtraArgs are added after the cluster's.
	ExtraArgs []string
	// Bin, when set, is the binary this replica runs instead of the
	// cluster's (a mixed-version cluster); Env is added to its environment.
	Bin string
	Env []string
	// AdminAddr is where the admin API listens when the cluster has
	// AdminFlags.
	AdminAddr string
	DataDir   string
	LogPath   string

	cluster *Cluster
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Cluster is a set of replicas bootstrapped with the same static peer list.
type Cluster struct {
	Bin        string
	Kubeconfig string
	Zone       string
	Dir        string
	Replicas   []*Replica
	// Namespace, when set, makes the replicas find each other through the
	// Kubernetes API (--discovery=kubernetes) as the pods of StatefulSet
	// "kdnsd" with label Selector in that namespace, instead of --peers.
	Namespace string
	// Upstream is the --upstream of every replica. New sets it to a closed
	// loopback port so that no test traffic leaves the machine; a test that
	// checks forwarding points it at a server of its own.
	Upstream string
	// AdminFlags, when set, turn the admin API on (at each replica's
	// AdminAddr) with these flags (token file, certificates).
	AdminFlags []string
	// ExtraArgs are added to every replica's command line.
	ExtraArgs []string
}

// FreeAddr returns a loopback host:port that was free for both TCP and UDP
// a moment ago, and that it has not returned before in this process: the
// kernel may hand a port it just freed to the next listener, and a replica
// whose Raft port is also its DNS port cannot start.
func FreeAddr() (string, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr, nil
		}
	}
	return "", errors.New("no free loopback port for both TCP and UDP")
}

// handedOut holds every address FreeAddr returned.
var handedOut sync.Map

// New lays out n replicas in dir (ids kdnsd-0 … kdnsd-n-1) without starting
// them.
func New(bin, kubeconfig, dir string, n int) (*Cluster, error) {
	c := &Cluster{Bin: bin, Kubeconfig: kubeconfig, Zone: "cluster.local.", Dir: dir, Upstream: "127.0.0.1:1"}
	for i := range n {
		r := &Replica{ID: fmt.Sprintf("kdnsd-%d", i), cluster: c}
		for _, p := range []*string{&r.RaftAddr, &r.DNSAddr, &r.HTTPAddr} {
			addr, err := FreeAddr()
			if err != nil {
				return nil, err
			}
			*p = addr
		}
		r.DataDir = filepath.Join(dir, r.ID)
		r.LogPath = filepath.Join(dir, r.ID+".log")
		c.Replicas = append(c.Replicas, r)
	}
	return c, nil
}

// WriteUnreachableKubeconfig writes a kubeconfig whose API server is a
// closed loopback port: replicas started with it have no API to watch, as in
// an outage, and answer from what they hold.
func WriteUnreachableKubeconfig(path string) error {
	return os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
}

// Selector is the label selector of the replicas' pods under discovery.
const Selector = "app.kubernetes.io/name=kdnsd-test"

// NewOnHosts lays out n replicas as a StatefulSet has them: each on its own
// address (127.0.0.11, .12, …) and all on the same ports, so that a
// replica's Raft and status addresses follow from its pod IP. Replica i can
// later be moved to another address with Move.
func NewOnHosts(bin, kubeconfig, dir string, n int) (*Cluster, error) {
	c, err := New(bin, kubeconfig, dir, 0)
	if err != nil {
		return nil, err
	}
	for i := range n {
		if err := c.AddOnHost(fmt.Sprintf("127.0.0.%d", 11+i)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// AddOnHost lays out one more replica (kdnsd-<next ordinal>) on host, with
// the ports of the cluster's first replica (new ones for the first).
func (c *Cluster) AddOnHost(host string) error {
	r := &Replica{ID: fmt.Sprintf("kdnsd-%d", len(c.Replicas)), cluster: c}
	if len(c.Replicas) == 0 {
		for _, p := range []*string{&r.RaftAddr, &r.DNSAddr, &r.HTTPAddr, &r.AdminAddr} {
			addr, err := FreeAddr()
			if err != nil {
				return err
			}
			*p = addr
		}
	} else {
		first := c.Replicas[0]
		r.RaftAddr, r.DNSAddr, r.HTTPAddr, r.AdminAddr = first.RaftAddr, first.DNSAddr, first.HTTPAddr, first.AdminAddr
	}
	r.DataDir = filepath.Join(c.Dir, r.ID)
	r.LogPath = filepath.Join(c.Dir, r.ID+".log")
	c.Replicas = append(c.Replicas, r)
	r.Move(host)
	return nil
}

// Move puts the replica's addresses on host (a rescheduled pod's new IP);
// it takes effect at the next Start.
func (r *Replica) Move(host string) {
	for _, p := range []*string{&r.RaftAddr, &r.DNSAddr, &r.HTTPAddr, &r.AdminAddr} {
		_, port, _ := net.SplitHostPort(*p)
		*p = net.JoinHostPort(host, port)
	}
}

// Host is the replica's IP.
func (r *Replica) Host() string {
	host, _, _ := net.SplitHostPort(r.RaftAddr)
	return host
}

// Peers is the --peers value of the cluster.
func (c *Cluster) Peers() string {
	var parts []string
	for _, r := range c.Replicas {
		if !r.ReadReplica {
			parts = append(parts, r.ID+"="+r.RaftAddr)
		}
	}
	return strings.Join(parts, ",")
}

// PeerStatus is the --peer-status value of the cluster: every voter's
// status address.
func (c *Cluster) PeerStatus() string {
	var parts []string
	for _, r := range c.Replicas {
		if !r.ReadReplica {
			parts = append(parts, r.ID+"="+r.HTTPAddr)
		}
	}
	return strings.Join(parts, ",")
}

// StartAll starts every replica.
func (c *Cluster) StartAll() error {
	for _, r := range c.Replicas {
		if err := r.Start(); err != nil {
			return err
		}
	}
	return nil
}

// StopAll kills every replica that is running; the cluster's files stay.
func (c *Cluster) StopAll() {
	for _, r := range c.Replicas {
		r.Kill()
	}
}

// Start starts the replica's process; its output is appended to LogPath.
func (r *Replica) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return fmt.Errorf("%s is already running", r.ID)
	}
	c := r.cluster
	args := []string{"serve",
		"--id", r.ID, "--raft-addr", r.RaftAddr,
		"--dns-addr", r.DNSAddr, "--http-addr", r.HTTPAddr, "--data-dir", r.DataDir,
		"--kubeconfig", c.Kubeconfig, "--zone", c.Zone, "--upstream", c.Upstream,
		// No load balancer to drain from: stop at once (a test can give
		// its own --lameduck in ExtraArgs).
		"--lameduck", "0s",
	}
	switch {
	case r.ReadReplica:
		args = append(args, "--voter=false")
	case c.Namespace != "":
		args = append(args, "--discovery", "kubernetes", "--namespace", c.Namespace,
			"--selector", Selector, "--statefulset", "kdnsd", "--dead-server-timeout", "2s")
	default:
		args = append(args, "--peers", c.Peers(), "--peer-status", c.PeerStatus())
	}
	if c.AdminFlags != nil {
		args = append(args, "--admin-addr", r.AdminAddr)
		args = append(args, c.AdminFlags...)
	}
	args = append(args, c.ExtraArgs...)
	args = append(args, r.ExtraArgs...)
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	bin := c.Bin
	if r.Bin != "" {
		bin = r.Bin
	}
	fmt.Fprintf(logf, "=== %s start: %s %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(r.Env, " "), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), r.Env...)
	// The replica dies with the test process, whatever way that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", r.ID, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	return nil
}

// Running reports whether the process is alive.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id of the running replica, 0 when it is not running.
func (r *Replica) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Kill ends the process with SIGKILL (like a node crash) and waits for it.
func (r *Replica) Kill() { r.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM (a graceful shutdown) and waits for it;
// after 20 seconds it kills it.
func (r *Replica) Stop() { r.signal(syscall.SIGTERM) }

// Pause stops the process with SIGSTOP, as a hung node: its sockets stay
// open and nothing is answered. Resume continues it with SIGCONT.
func (r *Replica) Pause() error  { return r.send(syscall.SIGSTOP) }
func (r *Replica) Resume() error { return r.send(syscall.SIGCONT) }

// send signals the running process without waiting for anything.
func (r *Replica) send(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return fmt.Errorf("%s is not running", r.ID)
	}
	return r.cmd.Process.Signal(sig)
}

func (r *Replica) signal(sig syscall.Signal) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Query asks the replica over UDP (TCP when tcp is set) and returns the reply.
func (r *Replica) Query(name string, qtype uint16, tcp bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	client := &dns.Client{Timeout: time.Second}
	if tcp {
		client.Net = "tcp"
	}
	reply, _, err := client.Exchange(m, r.DNSAddr)
	return reply, err
}

// QueryPlain asks over UDP without EDNS, as a minimal stub resolver does.
func (r *Replica) QueryPlain(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return r.Exchange(m)
}

// Exchange sends m over UDP and returns the reply.
func (r *Replica) Exchange(m *dns.Msg) (*dns.Msg, error) {
	client := &dns.Client{Timeout: time.Second}
	reply, _, err := client.Exchange(m, r.DNSAddr)
	return reply, err
}

// Status reads the replica's /status.
func (r *Replica) Status(ctx context.Context) (adminapi.Status, error) {
	var st adminapi.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.HTTPAddr+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s /status: %s", r.ID, resp.Status)
	}
	return st, json.Unmarshal(body, &st)
}

// Leader returns the running replica that reports itself leader, or nil.
func (c *Cluster) Leader(ctx context.Context) *Replica {
	for _, r := range c.Replicas {
		if !r.Running() {
			continue
		}
		if st, err := r.Status(ctx); err == nil && st.State == "Leader" {
			return r
		}
	}
	return nil
}

// LogTail returns the last n lines of the replica's log, for failure messages.
func (r *Replica) LogTail(n int) string {
	data, _ := os.ReadFile(r.LogPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
