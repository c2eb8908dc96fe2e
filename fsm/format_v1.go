//go:build !kdnsd_formatv2

package fsm

// MaxCommandVersion is the newest command format this build decodes and
// encodes.
const MaxCommandVersion = BaseCommandVersion
