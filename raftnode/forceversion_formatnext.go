//go:build kdnsd_formatnext

package raftnode

import (
	"os"
	"strconv"
	"sync"
)

// forcedCommandVersion is, in test builds only, the command format set in
// $KDNSD_TEST_FORCE_COMMAND_VERSION (0 when unset): a leader then writes it
// whatever SetCommandVersion decided, as a buggy newer release that ignored
// the cluster's version would.
var forcedCommandVersion = sync.OnceValue(func() int {
	v, _ := strconv.Atoi(os.Getenv("KDNSD_TEST_FORCE_COMMAND_VERSION"))
	return v
})
