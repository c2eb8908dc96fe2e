package main

import (
	"os"
	"strings"

	"github.com/miekg/dns"
)

// serveFromMap is the minimal miekg/dns reference: it answers from a map of
// the zone's RRsets, over UDP.
func serveFromMap(addr, zoneFile string) error {
	f, err := os.Open(zoneFile)
	if err != nil {
		return err
	}
	type key struct {
		name  string
		qtype uint16
	}
	records := map[key][]dns.RR{}
	names := map[string]bool{}
	var soa dns.RR
	zp := dns.NewZoneParser(f, zone, zoneFile)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		records[key{h.Name, h.Rrtype}] = append(records[key{h.Name, h.Rrtype}], rr)
		names[h.Name] = true
		if h.Rrtype == dns.TypeSOA {
			soa = rr
		}
	}
	if err := zp.Err(); err != nil {
		return err
	}
	dns.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		if rrs := records[key{name, q.Qtype}]; len(rrs) > 0 {
			m.Answer = rrs
		} else {
			if !names[name] {
				m.Rcode = dns.RcodeNameError
			}
			m.Ns = []dns.RR{soa}
		}
		w.WriteMsg(m)
	})
	return dns.ListenAndServe(addr, "udp", nil)
}
