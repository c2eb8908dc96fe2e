package main

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// block is an object of the 1408-byte size class, a size little else in a
// test process allocates.
type block [1400]byte

// TestReadDumpFindsHoles dumps this process's heap after it kept every
// other one of 4,000 blocks it allocated in a row, and reads the dump: the
// kept blocks are there, and the pages that hold them are about half empty.
func TestReadDumpFindsHoles(t *testing.T) {
	const allocated = 4000
	all := make([]*block, allocated)
	for i := range all {
		all[i] = new(block)
	}
	var kept []*block
	for i := 0; i < allocated; i += 2 {
		kept = append(kept, all[i])
	}
	all = nil
	runtime.GC()

	path := filepath.Join(t.TempDir(), "heap.dump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	debug.WriteHeapDump(f.Fd())
	runtime.KeepAlive(kept)
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sizes, err := readDump(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	var got sizeStats
	for _, s := range sizes {
		if s.size == 1408 {
			got = s
		}
	}
	if got.objects < allocated/2 {
		t.Fatalf("the dump holds %d objects of 1408 bytes, want at least the %d kept", got.objects, allocated/2)
	}
	if got.pages < got.live*3/2 {
		t.Errorf("%d live bytes of 1408-byte objects in %d bytes of pages; every other block was dropped, so want at least 1.5 times as many", got.live, got.pages)
	}
	if got.holes() != got.pages-got.live {
		t.Errorf("holes %d, want pages %d - live %d", got.holes(), got.pages, got.live)
	}
}

func TestReadDumpRefusesOtherFiles(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"not a dump", "hello, world\n", "not a Go heap dump"},
		{"cut after the header", dumpHeader, "ends before its objects"},
		{"cut in an object", dumpHeader + "\x01\x80\x80\x04\x10abc", "ends before its objects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readDump(bufio.NewReader(strings.NewReader(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("readDump: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
