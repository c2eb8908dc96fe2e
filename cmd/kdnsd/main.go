// Command kdnsd is a highly available cluster DNS server for Kubernetes whose
// replicas keep the records in their own Raft group.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kdnsd:", err)
		os.Exit(1)
	}
}
