// Package boltmaptest reads how much of each mapped file a process holds
// in RSS, for the tests of boltmap's callers and the benchmarks' memory
// reports.
package boltmaptest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ResidentByFile returns, for each file that process pid ("self" for this
// one) maps, how many bytes of its mappings are resident
// (/proc/pid/smaps), by the file's path.
func ResidentByFile(pid string) (map[string]int64, error) {
	f, err := os.Open("/proc/" + pid + "/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	resident := map[string]int64{}
	file := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			// A mapping's header: address range, permissions, offset,
			// device, inode and, for a file, its path.
			file = ""
			if len(fields) >= 6 && strings.HasPrefix(fields[5], "/") {
				file = fields[5]
			}
		case file != "" && len(fields) == 3 && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: Rss of %s: %w", f.Name(), file, err)
			}
			resident[file] += kb << 10
		}
	}
	return resident, sc.Err()
}

// MappedRSS returns how many bytes of path's mappings in this process are
// resident.
func MappedRSS(t testing.TB, path string) int64 {
	t.Helper()
	resident, err := ResidentByFile("self")
	if err != nil {
		t.Fatal(err)
	}
	return resident[path]
}
