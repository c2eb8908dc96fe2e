//go:build !kdnsd_formatv2

package raftnode

// forcedCommandVersion is 0: a release writes the format SetCommandVersion
// decided (see forceversion_formatv2.go for test builds).
func forcedCommandVersion() int { return 0 }
