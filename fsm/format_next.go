//go:build kdnsd_formatnext

package fsm

// MaxCommandVersion is the newest command format this build decodes and
// encodes. The format after the newest real one exists for tests of rolling
// upgrades only: it is the newest real format's JSON behind the next leading
// byte, so that a test can run replicas that know a format others do not. No
// release is built with kdnsd_formatnext.
const MaxCommandVersion = int(formatV2) + 1
