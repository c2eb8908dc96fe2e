//go:build !kdnsd_formatnext

package raftnode

// forcedCommandVersion is 0: a release writes the format SetCommandVersion
// decided (see forceversion_formatnext.go for test builds).
func forcedCommandVersion() int { return 0 }
