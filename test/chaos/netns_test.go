package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kdnsd/kdnsd/test/wait"
)

// The suite's network. TestMain re-executes the test binary under
// `unshare --net --mount`, so every interface, address and iptables rule
// below lives in a namespace that dies with the suite: the host's network
// is never touched. In it, a bridge holds the suite's own address (the API
// server's proxy and every DNS client) and one veth per replica, whose
// other end is eth0 of the replica's own network namespace, as a pod's.
// Partitions are iptables rules in a replica's namespace, as in a pod's.
const (
	insideEnv = "KDNSD_CHAOS_NETNS" // set in the re-executed test binary
	bridge    = "kdchaos0"
	suiteIP   = "10.77.0.1"
	prefixLen = "/24"
	firstHost = 11 // replica i is 10.77.0.(11+i)
)

func replicaIP(i int) string { return fmt.Sprintf("10.77.0.%d", firstHost+i) }

// netnsUnavailable says why the suite cannot make its private network
// namespace, or "" when it can.
func netnsUnavailable() string {
	if os.Geteuid() != 0 {
		return "the chaos scenarios need root (network namespaces and iptables); run make chaos as root"
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "the chaos scenarios need " + tool + ", which is not installed"
		}
	}
	if out, err := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		return fmt.Sprintf("no private network namespace here (unshare --net: %v %s)", err, strings.TrimSpace(string(out)))
	}
	return ""
}

// reexec runs this test binary again inside a new network and mount
// namespace and returns its exit status.
func reexec() int {
	args := append([]string{"--net", "--mount", "--propagation", "private", "--", os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), insideEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "chaos: re-executing in a network namespace:", err)
		return 1
	}
	return 0
}

// network is the replicas' namespaces, each held open by a sleeping process.
type network struct {
	holders []*exec.Cmd
}

// setupNetwork brings the suite namespace's loopback up and makes n replica
// namespaces attached to the bridge.
func setupNetwork(n int) (*network, error) {
	nw := &network{}
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", bridge, "type", "bridge"},
		{"ip", "addr", "add", suiteIP + prefixLen, "dev", bridge},
		{"ip", "link", "set", bridge, "up"},
	}
	if err := runAll(steps); err != nil {
		return nil, err
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	for i := range n {
		holder := exec.Command("unshare", "--net", "sleep", "infinity")
		holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := holder.Start(); err != nil {
			nw.close()
			return nil, err
		}
		nw.holders = append(nw.holders, holder)
		nsPath := nw.nsPath(i)
		if !wait.Poll(5*time.Second, func() bool {
			ns, err := os.Readlink(nsPath)
			return err == nil && ns != self
		}) {
			nw.close()
			return nil, fmt.Errorf("replica namespace %d was not created", i)
		}
		veth := fmt.Sprintf("kdv%d", i)
		pid := fmt.Sprint(holder.Process.Pid)
		steps := [][]string{
			{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pid},
			{"ip", "link", "set", veth, "master", bridge, "up"},
			nw.in(i, "ip", "link", "set", "lo", "up"),
			nw.in(i, "ip", "addr", "add", replicaIP(i)+prefixLen, "dev", "eth0"),
			nw.in(i, "ip", "link", "set", "eth0", "up"),
		}
		if err := runAll(steps); err != nil {
			nw.close()
			return nil, err
		}
	}
	return nw, nil
}

func (nw *network) nsPath(i int) string {
	return fmt.Sprintf("/proc/%d/ns/net", nw.holders[i].Process.Pid)
}

// in is argv run in replica i's namespace.
func (nw *network) in(i int, argv ...string) []string {
	return append([]string{"nsenter", "--net=" + nw.nsPath(i), "--"}, argv...)
}

// wrapper writes a script that runs bin in replica i's namespace (exec all
// the way down, so the harness's signals reach kdnsd itself), and in
// cgroup when one is given.
func (nw *network) wrapper(dir string, i int, bin, cgroup string) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("kdnsd-in-ns%d", i))
	script := "#!/bin/sh\n"
	if cgroup != "" {
		script += fmt.Sprintf("echo $$ > %s/cgroup.procs || exit 1\n", cgroup)
	}
	script += fmt.Sprintf("exec nsenter --net=%s -- %s \"$@\"\n", nw.nsPath(i), bin)
	return path, os.WriteFile(path, []byte(script), 0o755)
}

// cut drops, in replica i's namespace, what comes from peers (their
// addresses), and with both also what goes to them.
func (nw *network) cut(i int, peers []string, both bool) error {
	return runAll(cutSteps(func(argv ...string) []string { return nw.in(i, argv...) }, peers, both))
}

// heal removes every rule of replica i's namespace.
func (nw *network) heal(i int) error {
	return runAll(healSteps(func(argv ...string) []string { return nw.in(i, argv...) }))
}

// cutSteps are the iptables rules, each run through in (which enters the
// replica's network namespace), that drop what comes from peers, and with
// both also what goes to them; healSteps remove them.
func cutSteps(in func(argv ...string) []string, peers []string, both bool) [][]string {
	var steps [][]string
	for _, p := range peers {
		steps = append(steps, in("iptables", "-A", "INPUT", "-s", p, "-j", "DROP"))
		if both {
			steps = append(steps, in("iptables", "-A", "OUTPUT", "-d", p, "-j", "DROP"))
		}
	}
	return steps
}

func healSteps(in func(argv ...string) []string) [][]string {
	return [][]string{in("iptables", "-F", "INPUT"), in("iptables", "-F", "OUTPUT")}
}

func (nw *network) close() {
	for _, h := range nw.holders {
		h.Process.Kill()
		h.Wait()
	}
}

func runAll(steps [][]string) error {
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// apiProxy forwards TCP from the bridge to the API server on the suite's
// loopback, where the test environment binds it, so that the replicas in
// their namespaces reach it; it returns the address to dial. Stopping the
// API server makes every connection through it fail, as a real outage does.
func apiProxy(target string) (string, func(), error) {
	ln, err := net.Listen("tcp", suiteIP+":0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.DialTimeout("tcp", target, 2*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(up, c); done <- struct{}{} }()
				go func() { io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }, nil
}
