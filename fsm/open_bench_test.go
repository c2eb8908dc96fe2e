package fsm

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
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
	for b.Loop() {
		s, err := Open(path, nil)
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
}
