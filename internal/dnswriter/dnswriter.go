// Package dnswriter is the dns.ResponseWriter of a reply that does not go
// out through a miekg/dns server's connection: kdnsd's own UDP fast path
// answering a query it forwards, a query the resolver asks the forwarder in
// memory, and the recorders of tests (dnswritertest).
package dnswriter

import (
	"net"

	"github.com/miekg/dns"
)

// Writer is a dns.ResponseWriter that hands each reply, packed, to Send.
// With no miekg/dns connection behind it, Close and Hijack do nothing, and
// there is no TSIG.
type Writer struct {
	Local, Remote net.Addr
	// Send takes one packed reply. b stays the caller's: Send copies what it
	// keeps.
	Send func(b []byte) (int, error)
}

var _ dns.ResponseWriter = (*Writer)(nil)

func (w *Writer) LocalAddr() net.Addr         { return w.Local }
func (w *Writer) RemoteAddr() net.Addr        { return w.Remote }
func (w *Writer) Write(b []byte) (int, error) { return w.Send(b) }
func (*Writer) Close() error                  { return nil }
func (*Writer) TsigStatus() error             { return nil }
func (*Writer) TsigTimersOnly(bool)           {}
func (*Writer) Hijack()                       {}

// WriteMsg packs m and sends it.
func (w *Writer) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Send(b)
	return err
}
