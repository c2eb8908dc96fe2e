package fsm

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
)

// benchPods returns n pods in n/100 namespaces, each with one IPv4 address.
func benchPods(n int) []*Pod {
	pods := make([]*Pod, n)
	for i := range pods {
		pods[i] = &Pod{Namespace: fmt.Sprintf("ns-%d", i/100), Name: fmt.Sprintf("pod-%d", i),
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)})}}
	}
	return pods
}

// BenchmarkPods10k is what replicating 10,000 pods (in 100 namespaces)
// costs every replica: building a View of them (as from a snapshot), the
// heap it and the pods hold (B/view), and applying one entry that changes
// one pod or one service while they are there, in memory and durably.
func BenchmarkPods10k(b *testing.B) {
	const n = 10000
	pods := benchPods(n)
	b.Run("build-view", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			(&Records{Pods: pods, Tracked: Tracked{Pods: true}}).View(1)
		}
	})
	b.Run("heap", func(b *testing.B) {
		reportViewHeap(b, func() *View { return (&Records{Pods: benchPods(n), Tracked: Tracked{Pods: true}}).View(1) })
	})
	v := (&Records{Pods: pods, Tracked: Tracked{Pods: true}}).View(1)
	one := UpsertPod(&Pod{Namespace: "ns-7", Name: "pod-700", IPs: []netip.Addr{netip.MustParseAddr("10.245.0.1")}})
	b.Run("apply-one-pod-in-memory", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := newChange(v)
			c.apply(&one)
			c.done()
		}
	})
	svcCmd := UpsertService(svc("default", "web", "10.96.0.10"))
	b.Run("apply-one-service-in-memory", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := newChange(v)
			c.apply(&svcCmd)
			c.done()
		}
	})
	b.Run("apply-one-pod-durable", func(b *testing.B) {
		s := openStore(b, filepath.Join(b.TempDir(), "fsm.db"))
		var cmds []Command
		for _, p := range pods {
			cmds = append(cmds, UpsertPod(p))
		}
		mustApply(b, s, entryV2(b, 1, cmds...))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			mustApply(b, s, entryV2(b, uint64(i+2), one))
		}
	})
}
