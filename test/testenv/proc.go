package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child processes are started with Pdeathsig=SIGKILL so that they die with
// the test binary, however it dies. The kernel sends that signal when the
// *thread* that forked the child exits, not the process; the Go runtime ends
// a thread only when a goroutine locked to it (runtime.LockOSThread, e.g. a
// test that entered a network namespace) returns without unlocking. So every
// child is forked from one goroutine that locks its thread and never returns:
// no other goroutine can run on that thread, and it lives as long as the
// process.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startPinned(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: see above
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, done}
	return <-done
}

// proc is one child (etcd or kube-apiserver), in its own process group, its
// stdout and stderr going to logPath.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once Wait returned
	waitErr error
}

func startProc(name, logPath, bin string, args []string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // a terminal's ^C reaches us, not it; Stop kills the group
		Pdeathsig: syscall.SIGKILL,
	}
	if err := startPinned(cmd); err != nil {
		return nil, fmt.Errorf("testenv: starting %s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill SIGKILLs p's whole process group and waits until p has been reaped.
// The env's data is thrown away, so there is nothing to shut down gracefully.
func (p *proc) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.exited
}

// terminate SIGTERMs p and waits until it has exited, killing it after
// grace.
func (p *proc) terminate(grace time.Duration) {
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.kill()
	}
}

// exitError describes how p ended, with the tail of its log.
func (p *proc) exitError() error {
	return fmt.Errorf("testenv: %s exited early (%v)\n%s", p.name, p.waitErr, logTail(p.logPath, 40))
}

// reaper is a tiny shell that removes the env's directory once the test
// binary is gone, even if it died by a panic or a timeout and so never ran
// Stop: it reads a pipe whose only writer is the test binary, which the
// kernel closes when the test binary dies. (etcd and kube-apiserver die then
// by their Pdeathsig; the loop retries while they may still be writing.)
type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

const reaperScript = `d=$1
while read -r _; do :; done
i=0
while [ -e "$d" ] && [ "$i" -lt 100 ]; do
	rm -rf -- "$d" 2>/dev/null || sleep 0.1
	i=$((i+1))
done`

func startReaper(dir string) (*reaper, error) {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits w
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "testenv-reaper", dir)
	cmd.Stdin = r
	// Own process group: a terminal's ^C must not end it before it cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("testenv: starting the cleanup helper: %w", err)
	}
	return &reaper{cmd: cmd, w: w}, nil
}

// stop lets the reaper finish (it removes dir if still there) and reaps it.
func (r *reaper) stop() error {
	r.w.Close()
	return r.cmd.Wait()
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. Another process can take one before the child binds it; Start
// retries then.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all are picked, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// logTail returns the last n lines of the file at path, indented.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "    --- last %d lines of %s ---\n", len(lines), path)
	for _, l := range lines {
		buf.WriteString("    ")
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return buf.String()
}

// processGone reports whether pid no longer names a live process (it may
// linger as a zombie when it was orphaned to an init that does not reap).
func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if rerr != nil {
		return errors.Is(rerr, os.ErrNotExist)
	}
	// /proc/PID/stat: "pid (comm) S ..."; comm may contain spaces and ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}
