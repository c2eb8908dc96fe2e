package fsm

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// restartRecords returns n ClusterIP services in 20 namespaces, each with
// one named port and one endpoint slice of three ready endpoints: the
// records of test/dnsbench -restart.
func restartRecords(n int) *Records {
	var r Records
	for i := range n {
		ns, name := fmt.Sprintf("ns%d", i%20), fmt.Sprintf("svc%d", i)
		r.Services = append(r.Services, &Service{Namespace: ns, Name: name, Type: TypeClusterIP,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96 + byte(i>>16), byte(i >> 8), byte(i)})},
			Ports:      []Port{{Name: "http", Protocol: "TCP", Port: 80}}})
		sl := &EndpointSlice{Namespace: ns, Name: name + "-x", Service: name,
			Ports: []Port{{Name: "http", Protocol: "TCP", Port: 8080}}}
		for e := range 3 {
			a := netip.AddrFrom4([4]byte{10, 128 + byte(i>>14), byte(i >> 6), byte(i<<2 + e)})
			sl.Endpoints = append(sl.Endpoints, Endpoint{Addresses: []netip.Addr{a}, Ready: true})
		}
		r.Slices = append(r.Slices, sl)
	}
	return &r
}

// cpuTime is the CPU time this process has used: the work a benchmark
// spreads over several cores, which its wall time does not show.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpen100k is what a restarted replica spends opening its store
// before it can index and serve it: 100,000 services and as many endpoint
// slices of three endpoints.
func BenchmarkOpen100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "fsm.db")
	want := restartRecords(100000).View(1)
	var snap bytes.Buffer
	if err := WriteSnapshot(&snap, want); err != nil {
		b.Fatal(err)
	}
	s, err := Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Restore(&snap, 1); err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		s, err := Open(path, nil)
		cpu += cpuTime() - start
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if !viewsEqual(s.View(), want) {
			b.Fatal("the store opened holds other records than were stored")
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkView100k is what building the View of a restart's records
// costs (as Open does once it has decoded them), and the heap the View
// holds beyond its records (B/view).
func BenchmarkView100k(b *testing.B) {
	r := restartRecords(100000)
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			r.View(1)
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	})
	b.Run("heap", func(b *testing.B) { reportViewHeap(b, func() *View { return r.View(1) }) })
}

// reportViewHeap reports the live heap held by the View that build returns,
// as B/view.
func reportViewHeap(b *testing.B, build func() *View) {
	var before, after runtime.MemStats
	var sink *View
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		sink = build()
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	runtime.KeepAlive(sink)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc), "B/view")
}
