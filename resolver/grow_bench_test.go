package resolver

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"iter"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/wait"
)

// BenchmarkGrow100k is a follower's memory after the first sync of a
// cluster of 100k ClusterIP services, each with one port and a slice of
// three ready endpoints: 400 log entries of 500 commands (a leader's
// DefaultMaxBatch) applied by a store that a resolver follows, as a
// replica applies them. It reports, once the heap is collected and given
// back, the live heap (live-MB) and what the heap's spans hold beyond it
// (holes-MB): the space that dead objects of the sync leave among the live
// ones, which no collection returns. A restart reads the same records in
// one piece (BenchmarkOpen100k). With -grow.heapdump it also writes a heap
// dump (runtime/debug.WriteHeapDump) at that moment, which
// test/heapholes reads to say which object sizes the holes lie among.
func BenchmarkGrow100k(b *testing.B) {
	const services, perEntry = 100000, 500
	for b.Loop() {
		store, err := fsm.Open(filepath.Join(b.TempDir(), "fsm.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		r := newTestResolver(b, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Follow(ctx, store); close(done) }()
		var last uint64
		for e := range growEntries(b, services, perEntry) {
			if err := store.ApplyEntries([]fsm.Entry{e}); err != nil {
				b.Fatal(err)
			}
			last = e.Index
		}
		wait.For(b, "the resolver to serve the last entry", time.Minute, func() bool { return r.AppliedIndex() == last })
		b.StopTimer()
		debug.FreeOSMemory()
		s := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		runtimemetrics.Read(s)
		if *growHeapDump != "" {
			writeHeapDump(b, *growHeapDump)
		}
		b.ReportMetric(float64(s[0].Value.Uint64())/1e6, "live-MB")
		b.ReportMetric(float64(s[1].Value.Uint64())/1e6, "holes-MB")
		cancel()
		<-done
		store.Close()
		b.StartTimer()
	}
}

var growHeapDump = flag.String("grow.heapdump", "", "BenchmarkGrow100k: write a heap dump to this file once the heap is read (test/heapholes reads it)")

func writeHeapDump(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	debug.WriteHeapDump(f.Fd())
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// growEntries yields the entries that create services ClusterIP services
// and their slices, perEntry commands to an entry, each encoded when it is
// asked for: a replica holds none of them once applied.
func growEntries(b *testing.B, services, perEntry int) iter.Seq[fsm.Entry] {
	return func(yield func(fsm.Entry) bool) {
		addr := func(base string, n int) netip.Addr {
			a := netip.MustParseAddr(base).As4()
			binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(n))
			return netip.AddrFrom4(a)
		}
		var cmds []fsm.Command
		index := uint64(0)
		flush := func() bool {
			data, err := fsm.Encode(cmds)
			if err != nil {
				b.Fatal(err)
			}
			index++
			cmds = cmds[:0]
			return yield(fsm.Entry{Index: index, Data: data})
		}
		for i := range services {
			ns, name := fmt.Sprintf("ns%d", i%20), fmt.Sprintf("svc%d", i)
			svc := &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{addr("10.96.0.0", 10+i)},
				Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}}
			sl := &fsm.EndpointSlice{Namespace: ns, Name: name + "-x", Service: name, Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}}}
			for e := range 3 {
				sl.Endpoints = append(sl.Endpoints, fsm.Endpoint{Addresses: []netip.Addr{addr("10.128.0.0", i*4+e)}, Ready: true})
			}
			cmds = append(cmds, fsm.UpsertService(svc), fsm.UpsertSlice(sl))
			if len(cmds) == perEntry && !flush() {
				return
			}
		}
		if len(cmds) > 0 {
			flush()
		}
	}
}
