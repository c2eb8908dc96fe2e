package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/cluster"
)

// restartReplica is the one kdnsd process of measureRestart.
type restartReplica struct {
	bin, dir, kubeconfig           string
	dnsAddr, raftAddr, http, admin string
	cmd                            *exec.Cmd
}

// measureRestart is dnsbench -restart: what a replica costs at scale
// without an API server. It writes a snapshot of the dataset, installs it
// into a one-replica kdnsd with `kdnsd snapshot restore` (as an operator
// restores a backup), then kills the replica with SIGKILL and starts it
// again with its API server unreachable (restarts times), and prints the
// snapshot's size, the install time, and for each restart the time from the
// process's start to its first correct answer, its RSS (anonymous, of
// which the Go heap, and file-backed) 5 s later, its peak RSS and its data
// directory's size.
func measureRestart(bin string, n, restarts int) error {
	dir, err := os.MkdirTemp("", "kdnsd-restartbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := &restartReplica{bin: bin, dir: dir, kubeconfig: filepath.Join(dir, "unreachable.kubeconfig")}
	if err := cluster.WriteUnreachableKubeconfig(r.kubeconfig); err != nil {
		return err
	}
	for _, a := range []*string{&r.dnsAddr, &r.raftAddr, &r.http, &r.admin} {
		if *a, err = cluster.FreeAddr(); err != nil {
			return err
		}
	}

	services, slices := dataset(n, 0)
	snap := filepath.Join(dir, "dataset.snap")
	if err := writeSnapshot(snap, fsm.NewView(1, services, slices)); err != nil {
		return err
	}
	st, err := os.Stat(snap)
	if err != nil {
		return err
	}
	fmt.Printf("%d services + %d slices (%d endpoints): snapshot %.1f MiB\n", n, len(slices), 3*len(slices), mb(st.Size()))

	if err := r.start(); err != nil {
		return err
	}
	defer r.kill()
	// The restore needs a leader: retried until the replica elected itself.
	began := time.Now()
	for {
		out, err := exec.Command(bin, "snapshot", "restore", snap, "--server", "http://"+r.admin).CombinedOutput()
		if err == nil {
			break
		}
		if time.Since(began) > time.Minute {
			return fmt.Errorf("kdnsd snapshot restore: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	last := services[len(services)-1]
	want := last.ClusterIPs[0].String()
	if err := r.awaitAnswer(last, want, time.Minute); err != nil {
		return err
	}
	fmt.Printf("install: snapshot restore → the last service answered %.2f s after the first restore attempt\n", time.Since(began).Seconds())

	for range restarts {
		r.kill()
		if err := r.start(); err != nil {
			return err
		}
		started := time.Now()
		if err := r.awaitAnswer(last, want, time.Minute); err != nil {
			return err
		}
		fmt.Printf("restart (SIGKILL, API server unreachable): first correct answer %d ms after the process started\n",
			time.Since(started).Milliseconds())
		time.Sleep(5 * time.Second) // let the start-up garbage be collected before RSS is read
		heap, err := heapInuse(r.http)
		if err != nil {
			return err
		}
		du, err := dirSize(filepath.Join(dir, "data"))
		if err != nil {
			return err
		}
		pid := r.cmd.Process.Pid
		fmt.Printf("RSS 5 s later: %.1f MiB (anonymous %.1f MiB, of which Go heap in use %.1f MiB; file-backed %.1f MiB: the binary and bbolt's maps); peak RSS %.1f MiB; data directory %.1f MiB\n",
			kbMB(vmRSS(pid)), kbMB(procStatusKB(pid, "RssAnon")), mb(heap), kbMB(procStatusKB(pid, "RssFile")), kbMB(procStatusKB(pid, "VmHWM")), mb(du))
	}
	return nil
}

func writeSnapshot(path string, v *fsm.View) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = fsm.WriteSnapshot(f, v)
	return errors.Join(err, f.Close())
}

func (r *restartReplica) start() error {
	r.cmd = exec.Command(r.bin, "serve", "--id", "r0", "--peers", "r0="+r.raftAddr, "--raft-addr", r.raftAddr,
		"--dns-addr", r.dnsAddr, "--http-addr", r.http, "--admin-addr", r.admin,
		"--data-dir", filepath.Join(r.dir, "data"), "--kubeconfig", r.kubeconfig, "--upstream", "127.0.0.1:1",
		"--log-level", "error", "--raft-log-level", "error")
	r.cmd.Stderr = os.Stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return r.cmd.Start()
}

func (r *restartReplica) kill() {
	if r.cmd != nil && r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// awaitAnswer asks for s's A record every millisecond until it is want.
func (r *restartReplica) awaitAnswer(s *fsm.Service, want string, timeout time.Duration) error {
	c := &dns.Client{Timeout: 100 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(fqdn(s), dns.TypeA)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m, _, err := c.Exchange(q, r.dnsAddr); err == nil && len(m.Answer) == 1 {
			if a, ok := m.Answer[0].(*dns.A); ok && a.A.String() == want {
				return nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s.%s not answered %s within %s", s.Name, s.Namespace, want, timeout)
}

// heapInuse reads go_memstats_heap_inuse_bytes from the /metrics of the
// kdnsd whose status port is at addr.
func heapInuse(addr string) (int64, error) {
	v, err := metric(addr, "go_memstats_heap_inuse_bytes")
	return int64(v), err
}

// metric returns the value of the unlabelled metric name on the /metrics
// page at addr.
func metric(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, errors.Join(sc.Err(), fmt.Errorf("no %s in /metrics", name))
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return err
	})
	return total, err
}

// mb and kbMB give MiB (2^20 bytes), as the output says.
func mb(b int64) float64 { return float64(b) / (1 << 20) }

func kbMB(kb int) float64 { return float64(kb) / 1024 }
