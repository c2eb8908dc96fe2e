package resolver

import (
	"net/netip"
	"strings"
)

// dashed returns an address with hyphens for its dots or colons: 10-1-2-3
// for 10.1.2.3, fd00--1 for fd00::1.
func dashed(a netip.Addr) string {
	return strings.ReplaceAll(strings.ReplaceAll(a.String(), ".", "-"), ":", "-")
}

// endpointLabel returns the label that names an endpoint address without
// hostname: its dashed form, which must be a valid host name label (RFC 1123
// section 2.1: no hyphen first or last; Go's resolver drops SRV records whose
// targets are not). An IPv6 address ending in "::" gets a final 0
// (fd00-244-6--0 for fd00:244:6::), the name CoreDNS gives it; one starting
// with "::" a first 0 (0--a01-203 for ::a01:203), where CoreDNS keeps the
// invalid --a01-203. Either still reads as the address.
func endpointLabel(a netip.Addr) string {
	l := dashed(a)
	if strings.HasSuffix(l, "-") {
		l += "0"
	}
	if strings.HasPrefix(l, "-") {
		l = "0" + l
	}
	return l
}
