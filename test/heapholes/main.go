// Command heapholes reads a Go heap dump (runtime/debug.WriteHeapDump) and
// prints, for each object size, the live bytes and the 8 KiB pages that hold
// part of a live object of that size: where in the heap the space that dead
// objects leave among live ones (the "holes", which no collection returns)
// lies. BenchmarkGrow100k writes such a dump with -grow.heapdump
// (BENCHMARKS.md).
//
// A dump gives each live object's address and size, not its span, so a
// size's pages are counted from the objects themselves: a span whose pages
// hold no live object of that size is not counted, and the figures are a
// lower bound of the heap each size occupies.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
)

// pageSize is the Go heap's page.
const pageSize = 8192

// The records of a heap dump that come before the goroutines (runtime/heapdump.go).
const (
	tagObject = 1
	tagType   = 3
	tagParams = 6
	tagItab   = 8
)

// dumpHeader starts every heap dump the runtime writes since Go 1.7.
const dumpHeader = "go1.7 heap dump\n"

// sizeStats is what a dump holds of the live objects of one size.
type sizeStats struct {
	size, objects, live, pages uint64
}

// holes is the space of a size's pages that no live object takes.
func (s sizeStats) holes() uint64 { return s.pages - s.live }

func main() {
	top := flag.Int("top", 20, "sizes to print, those with the most holes first")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: heapholes [-top N] HEAPDUMP\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	sizes, err := readDump(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		log.Fatalf("%s: %v", flag.Arg(0), err)
	}
	var live, pages uint64
	for _, s := range sizes {
		live += s.live
		pages += s.pages
	}
	fmt.Printf("live %.1f MB in %.1f MB of pages: %.1f MB of holes\n", mb(live), mb(pages), mb(pages-live))
	slices.SortFunc(sizes, func(a, b sizeStats) int {
		if a.holes() != b.holes() {
			if a.holes() > b.holes() {
				return -1
			}
			return 1
		}
		return int(a.size) - int(b.size)
	})
	fmt.Println("| object size | live objects | live | pages | holes |\n|---|---|---|---|---|")
	for _, s := range sizes[:min(*top, len(sizes))] {
		fmt.Printf("| %d B | %d | %.1f MB | %.1f MB | %.1f MB |\n", s.size, s.objects, mb(s.live), mb(s.pages), mb(s.holes()))
	}
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

// readDump reads a heap dump up to the end of its objects, which the
// runtime writes after its parameters and itabs and before anything else.
func readDump(r *bufio.Reader) ([]sizeStats, error) {
	hdr := make([]byte, len(dumpHeader))
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr) != dumpHeader {
		return nil, errors.New("not a Go heap dump (runtime/debug.WriteHeapDump)")
	}
	d := dumpReader{r: r}
	bySize := map[uint64]*sizeStats{}
	pages := map[uint64]map[uint64]struct{}{}
	for d.err == nil {
		switch tag := d.int(); tag {
		case tagParams: // endianness, pointer size, heap start and end, GOARCH, Go version, CPUs
			d.ints(4)
			d.skipBytes()
			d.skipBytes()
			d.int()
		case tagType: // address, size, name, whether it holds pointers
			d.ints(2)
			d.skipBytes()
			d.int()
		case tagItab: // address, type address
			d.ints(2)
		case tagObject: // address, contents, pointer fields until a 0
			addr, size := d.int(), d.int()
			d.skip(size)
			for d.err == nil && d.int() != 0 {
				d.int()
			}
			s := bySize[size]
			if s == nil {
				s = &sizeStats{size: size}
				bySize[size], pages[size] = s, map[uint64]struct{}{}
			}
			s.objects++
			s.live += size
			for p := addr / pageSize; size > 0 && p <= (addr+size-1)/pageSize; p++ {
				pages[size][p] = struct{}{}
			}
		default:
			if d.err != nil {
				break
			}
			if len(bySize) == 0 {
				return nil, fmt.Errorf("record %d before any object", tag)
			}
			out := make([]sizeStats, 0, len(bySize))
			for size, s := range bySize {
				s.pages = uint64(len(pages[size])) * pageSize
				out = append(out, *s)
			}
			return out, nil
		}
	}
	if errors.Is(d.err, io.EOF) {
		return nil, errors.New("the dump ends before its objects do")
	}
	return nil, d.err
}

// dumpReader reads a dump's varints and byte strings, keeping the first
// error.
type dumpReader struct {
	r   *bufio.Reader
	err error
}

func (d *dumpReader) int() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	d.err = err
	return v
}

func (d *dumpReader) ints(n int) {
	for range n {
		d.int()
	}
}

func (d *dumpReader) skip(n uint64) {
	if d.err != nil {
		return
	}
	_, d.err = d.r.Discard(int(n))
}

func (d *dumpReader) skipBytes() { d.skip(d.int()) }
