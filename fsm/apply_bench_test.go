package fsm

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkApply100k is what applying one entry costs a replica's View
// (in memory; the store's write is apart) with 100,000 services and as
// many endpoint slices: one service changed, one slice changed.
func BenchmarkApply100k(b *testing.B) {
	var r Records
	for i := range 100000 {
		ns, name := fmt.Sprintf("ns-%d", i/50), fmt.Sprintf("svc-%d", i)
		r.Services = append(r.Services, svc(ns, name, netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}).String()))
		r.Slices = append(r.Slices, &EndpointSlice{Namespace: ns, Name: name + "-abc", Service: name,
			Endpoints: []Endpoint{{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)})}}}})
	}
	v := r.View(1)
	for _, c := range []struct {
		name string
		cmd  Command
	}{
		{"one-service", UpsertService(svc("ns-0", "svc-7", "10.255.0.1"))},
		{"one-slice", UpsertSlice(&EndpointSlice{Namespace: "ns-0", Name: "svc-7-abc", Service: "svc-7"})},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Apply(2, c.cmd)
			}
		})
	}
}
