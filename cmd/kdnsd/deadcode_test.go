package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryKeepsDeadCodeElimination: no function reachable in kdnsd's
// binary calls methods by name through reflect. One such call (executing a
// text/template or html/template is one) makes the Go linker keep every
// exported method of every type the binary holds: kdnsd's binary was then
// 94 MB instead of 54 MB, and each replica held 9.5 MB more of it in memory.
// The linker's own dependency dump says which functions make such calls
// (<ReflectMethod>); the test names the road from main to the first.
func TestBinaryKeepsDeadCodeElimination(t *testing.T) {
	if testing.Short() {
		t.Skip("links kdnsd")
	}
	build := exec.Command("go", "build", "-ldflags=-dumpdep", "-o", filepath.Join(t.TempDir(), "kdnsd"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	var dump bytes.Buffer
	build.Stderr = &dump
	if err := build.Run(); err != nil {
		t.Fatalf("go build -ldflags=-dumpdep: %v\n%.2000s", err, dump.String())
	}
	// Lines are "caller -> callee", either marked " <ReflectMethod>" when
	// it calls methods by name.
	const mark = " <ReflectMethod>"
	callees := map[string][]string{}
	var offenders []string
	sc := bufio.NewScanner(&dump)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		if strings.HasSuffix(from, mark) {
			from = strings.TrimSuffix(from, mark)
			if len(callees[from]) == 0 {
				offenders = append(offenders, from)
			}
		}
		callees[from] = append(callees[from], strings.TrimSuffix(to, mark))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(callees) < 1000 {
		t.Fatalf("the linker's dump has %d callers: not the dump this test reads", len(callees))
	}
	if len(offenders) > 0 {
		t.Errorf("reachable functions call methods by name through reflect: %s\nthe road from main: %s",
			strings.Join(offenders, ", "), strings.Join(road(callees, "_", offenders[0]), " -> "))
	}
}

// road returns the shortest chain of calls from root to target in callees.
func road(callees map[string][]string, root, target string) []string {
	from := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		if f == target {
			var chain []string
			for ; f != root; f = from[f] {
				chain = append(chain, f)
			}
			chain = append(chain, root)
			for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
				chain[i], chain[j] = chain[j], chain[i]
			}
			return chain
		}
		for _, c := range callees[f] {
			if _, seen := from[c]; !seen {
				from[c] = f
				queue = append(queue, c)
			}
		}
	}
	return []string{"(no road found)"}
}
