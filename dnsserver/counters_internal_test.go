package dnsserver

import (
	"testing"
	"unsafe"

	"github.com/miekg/dns"
)

// TestBlockSize: blocks fill whole pairs of cache lines, so that the
// allocator never places two in one.
func TestBlockSize(t *testing.T) {
	if n := unsafe.Sizeof(block{}); n%blockAlign != 0 {
		t.Errorf("a block is %d bytes, not a multiple of %d", n, blockAlign)
	}
}

// BenchmarkCount is what the fast path adds to a query: counting it and
// its response. "own" is a block per goroutine, as each UDP reader has;
// "shared" is one block for all, for comparison.
func BenchmarkCount(b *testing.B) {
	q := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	q.SetEdns0(1232, false)
	msg, _ := q.Pack()
	r := new(dns.Msg).SetRcode(q, dns.RcodeNameError)
	resp, _ := r.Pack()
	var c Counters
	b.Run("serial", func(b *testing.B) {
		blk := c.newBlock(transportUDP, true)
		for b.Loop() {
			blk.request(msg)
			blk.response(resp)
		}
	})
	b.Run("parallel-own", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			blk := c.newBlock(transportUDP, true)
			for pb.Next() {
				blk.request(msg)
				blk.response(resp)
			}
		})
	})
	b.Run("parallel-shared", func(b *testing.B) {
		blk := c.newBlock(transportUDP, true)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				blk.request(msg)
				blk.response(resp)
			}
		})
	})
}
