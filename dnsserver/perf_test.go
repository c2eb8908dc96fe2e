package dnsserver_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/dnsserver"
	"github.com/kdnsd/kdnsd/dnsserver/dnsservertest"
	"github.com/kdnsd/kdnsd/resolver"
	"github.com/kdnsd/kdnsd/resolver/resolvertest"
)

// TestDig asks dig, over UDP and TCP, a server started by ListenAndServe.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed")
	}
	socks, err := dnsserver.Listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := socks.TCP.Addr().(*net.TCPAddr)
	socks.UDP[0].Close()
	socks.TCP.Close()
	r := newTestResolver(t, resolver.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- dnsserver.ListenAndServe(ctx, addr.String(), dnsserver.Config{Handler: r}, func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"web.default.svc.cluster.local", "A"}, "10.96.0.110"},
		{[]string{"+tcp", "Web.Default.svc.cluster.local", "AAAA"}, "fd00:10:96::b0"},
		{[]string{"_http._tcp.web.default.svc.cluster.local", "SRV"}, "0 100 80 web.default.svc.cluster.local."},
		{[]string{"-x", "10.96.0.1"}, "kubernetes.default.svc.cluster.local."},
		{[]string{"dns-version.cluster.local", "TXT"}, `"1.1.0"`},
		{[]string{"+nocookie", "+noedns", "hl.default.svc.cluster.local", "A"}, "10.244.1.1\n10.244.1.2"},
		{[]string{"10-1-2-3.default.pod.cluster.local", "A"}, "10.1.2.3"},
	} {
		args := append([]string{"@127.0.0.1", "-p", fmt.Sprint(addr.Port), "+short", "+time=2", "+tries=1"}, c.args...)
		out, err := exec.Command(dig, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		slicesSort(got)
		if strings.Join(got, "\n") != c.want {
			t.Errorf("dig %s:\n%s\nwant\n%s", strings.Join(args, " "), out, c.want)
		}
	}
	// The full answer: AA, NXDOMAIN, the SOA.
	args := []string{"@127.0.0.1", "-p", fmt.Sprint(addr.Port), "+time=2", "+tries=1", "nope.default.svc.cluster.local"}
	out, err := exec.Command(dig, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	for _, want := range []string{"status: NXDOMAIN", "flags: qr aa rd", "cluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dig %s: no %q in\n%s", strings.Join(args, " "), want, out)
		}
	}
}

// echoServer runs, until the test ends, n SO_REUSEPORT sockets that send
// every datagram back with QR set: the least a Go read-write loop costs, as
// a bound for the fast path.
func echoServer(t *testing.T, n int) string {
	lc := net.ListenConfig{Control: dnsserver.UDPControl(false)}
	addr := "127.0.0.1:0"
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		t.Cleanup(func() { pc.Close() })
		c := pc.(*net.UDPConn)
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if n > 2 {
					buf[2] |= 0x80
				}
				c.WriteToUDPAddrPort(buf[:n], from)
			}
		}()
	}
	return addr
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func slicesSort(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// TestServerAllocs: the UDP server answers ordinary queries without
// allocating, sockets included.
func TestServerAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a quiet, race-free run")
	}
	r := newTestResolver(t, resolver.Config{})
	addr := dnsservertest.Start(t, dnsserver.Config{Handler: r}, 1)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q, _ := new(dns.Msg).SetQuestion("hl.default.svc.cluster.local.", dns.TypeA).Pack()
	buf := make([]byte, 4096)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	exchange := func() {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		exchange()
	}
	const n = 5000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		exchange()
	}
	runtime.ReadMemStats(&after)
	per := float64(after.Mallocs-before.Mallocs) / n
	t.Logf("%.3f allocations per query, client and server", per)
	if per > 0.05 {
		t.Errorf("%.3f allocations per query", per)
	}
}

// TestDNSPerf measures queries per second with dnsperf on loopback, through
// the fast path and through miekg/dns's server. It runs only with
// KDNSD_DNSPERF=1:
//
//	KDNSD_DNSPERF=1 go test -run DNSPerf -v ./dnsserver
func TestDNSPerf(t *testing.T) {
	if os.Getenv("KDNSD_DNSPERF") == "" {
		t.Skip("set KDNSD_DNSPERF=1 to run dnsperf")
	}
	dnsperf, err := exec.LookPath("dnsperf")
	if err != nil {
		t.Skip("dnsperf not installed")
	}
	// A mix of what clients ask.
	data := filepath.Join(t.TempDir(), "queries")
	var lines []string
	for i := range 1000 {
		ns := fmt.Sprintf("ns-%d", i/50)
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			lines = append(lines, fmt.Sprintf("svc-%d.%s.svc.cluster.local A", i, ns))
		case 5:
			lines = append(lines, fmt.Sprintf("svc-%d.%s.svc.cluster.local AAAA", i, ns))
		case 6:
			lines = append(lines, fmt.Sprintf("_http._tcp.svc-%d.%s.svc.cluster.local SRV", i, ns))
		case 7:
			lines = append(lines, fmt.Sprintf("svc-%d.%s.svc.cluster.local.%s.svc.cluster.local A", i, ns, ns)) // search path: NXDOMAIN
		case 8:
			lines = append(lines, fmt.Sprintf("svc-%d.%s.svc.cluster.local A", i-4, ns)) // headless
		case 9:
			lines = append(lines, fmt.Sprintf("%d.%d.96.10.in-addr.arpa PTR", i&0xff, i>>8))
		}
	}
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	qps := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	lost := regexp.MustCompile(`Queries lost:\s+(\d+)`)
	for _, c := range []struct {
		name    string
		miekg   bool
		echo    bool
		noBatch bool
	}{
		{name: "fast path, recvmmsg/sendmmsg"},
		{name: "fast path, recvmsg/sendmsg", noBatch: true},
		{name: "miekg/dns server", miekg: true},
		{name: "bare echo loop, recvfrom/sendto", echo: true},
	} {
		var addr string
		if c.echo {
			addr = echoServer(t, dnsserver.UDPSockets())
		} else {
			r, err := resolver.New(resolver.Config{})
			if err != nil {
				t.Fatal(err)
			}
			r.Update(resolvertest.BigView(1000, 1))
			addr = dnsservertest.Start(t, dnsserver.Config{Handler: r, MiekgUDP: c.miekg, NoBatch: c.noBatch}, dnsserver.UDPSockets())
		}
		host, port, _ := net.SplitHostPort(addr)
		args := []string{"-s", host, "-p", port, "-d", data, "-l", "5", "-c", "8", "-T", "1", "-q", "500"}
		before := cpuTime()
		cmd := exec.Command(dnsperf, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dnsperf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		server := cpuTime() - before
		m, l := qps.FindSubmatch(out), lost.FindSubmatch(out)
		if m == nil {
			t.Fatalf("dnsperf output:\n%s", out)
		}
		t.Logf("%s (%d UDP sockets, GOMAXPROCS %d): dnsperf %s: %s queries per second, %s lost; CPU seconds: server %.2f, dnsperf %.2f",
			c.name, dnsserver.UDPSockets(), runtime.GOMAXPROCS(0), strings.Join(args, " "), m[1], l[1],
			server.Seconds(), (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
	}
}
