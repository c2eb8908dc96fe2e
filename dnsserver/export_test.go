package dnsserver

// UDPControl is udpControl, for the echo server that TestDNSPerf compares
// with.
var UDPControl = udpControl
