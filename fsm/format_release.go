//go:build !kdnsd_formatnext

package fsm

// MaxCommandVersion is the newest command format this build decodes and
// encodes.
const MaxCommandVersion = int(formatV2)
