//go:build kdnsd_formatv2

package fsm

// MaxCommandVersion is the newest command format this build decodes and
// encodes. Format 2 exists for tests of rolling upgrades only: it is format
// 1's JSON behind another leading byte, so that a test can run replicas that
// know a format others do not. No release is built with kdnsd_formatv2.
const MaxCommandVersion = 2
