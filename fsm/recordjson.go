package fsm

import (
	"encoding/json"
	"net/netip"
	"unicode/utf8"
)

// The store holds each service and endpoint slice as json.Marshal writes
// it, and a restart reads every one of them before it can serve:
// encoding/json's reflection took most of that time at 100k services. A
// recordReader reads that exact form alone, several times faster: no
// whitespace, no escapes, no null but for a list, known fields each once,
// plain integers. Whatever else a record holds is left to encoding/json
// (unmarshalRecord), so what a record decodes to, or the error, is what
// json.Unmarshal gives.

// unmarshalService decodes raw into s as json.Unmarshal does.
func unmarshalService(raw []byte, s *Service, in interner) error {
	r := recordReader{b: raw, in: in}
	if r.service(s) {
		return nil
	}
	*s = Service{}
	return json.Unmarshal(raw, s)
}

// unmarshalSlice decodes raw into e as json.Unmarshal does.
func unmarshalSlice(raw []byte, e *EndpointSlice, in interner) error {
	r := recordReader{b: raw, in: in}
	if r.slice(e) {
		return nil
	}
	*e = EndpointSlice{}
	return json.Unmarshal(raw, e)
}

// interner returns one string for equal bytes: the namespaces, types,
// protocols and port names that many records repeat are then held once.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	in[s] = s
	return s
}

// recordReader reads a record in json.Marshal's form. Its methods return
// the zero value once the input is not in that form, and set failed.
type recordReader struct {
	b      []byte
	i      int
	failed bool
	in     interner
}

func (r *recordReader) fail() { r.failed = true }

// next consumes c if it comes next.
func (r *recordReader) next(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *recordReader) expect(c byte) {
	if !r.next(c) {
		r.fail()
	}
}

// done reports whether the whole input was read in the expected form.
func (r *recordReader) done() bool { return !r.failed && r.i == len(r.b) }

// object reads an object whose keys field knows, each once: field reads
// the value of key and returns the key's bit, or 0 for an unknown key.
func (r *recordReader) object(field func(key []byte) uint32) {
	r.expect('{')
	if r.failed || r.next('}') {
		return
	}
	var seen uint32
	for !r.failed {
		key := r.rawString()
		r.expect(':')
		if r.failed {
			return
		}
		bit := field(key)
		if bit == 0 || seen&bit != 0 {
			r.fail()
			return
		}
		seen |= bit
		if r.next('}') {
			return
		}
		r.expect(',')
	}
}

// list reads an array, calling elem at each element; null is no list
// (nil), as json.Unmarshal makes it.
func (r *recordReader) list(elem func()) (null bool) {
	if r.next('n') {
		if r.i+3 <= len(r.b) && string(r.b[r.i:r.i+3]) == "ull" {
			r.i += 3
			return true
		}
		r.fail()
		return false
	}
	r.expect('[')
	if r.failed || r.next(']') {
		return false
	}
	for !r.failed {
		elem()
		if r.next(']') {
			return false
		}
		r.expect(',')
	}
	return false
}

// rawString returns a string's bytes, which must need no unescaping.
func (r *recordReader) rawString() []byte {
	r.expect('"')
	start, ascii := r.i, true
	for ; !r.failed && r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				r.fail() // encoding/json replaces invalid UTF-8
				return nil
			}
			return s
		case c == '\\' || c < 0x20:
			r.fail()
			return nil
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.fail()
	return nil
}

func (r *recordReader) str() string { return string(r.rawString()) }

func (r *recordReader) interned() string {
	if b := r.rawString(); !r.failed {
		return r.in.get(b)
	}
	return ""
}

func (r *recordReader) boolean() bool {
	rest := r.b[r.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		r.i += 4
		return true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		r.i += 5
		return false
	}
	r.fail()
	return false
}

// port reads a JSON integer that fits in 16 bits.
func (r *recordReader) port() uint16 {
	start, v := r.i, 0
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' && v <= 0xffff {
		v = v*10 + int(r.b[r.i]-'0')
		r.i++
	}
	n := r.i - start
	if n == 0 || n > 1 && r.b[start] == '0' || v > 0xffff ||
		r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.fail()
		return 0
	}
	return uint16(v)
}

// addrs reads a list of addresses in netip.Addr's text form.
func (r *recordReader) addrs() []netip.Addr {
	out := []netip.Addr{}
	if r.list(func() {
		b := r.rawString()
		if r.failed {
			return
		}
		var a netip.Addr
		if len(b) > 0 {
			var err error
			if a, err = netip.ParseAddr(string(b)); err != nil {
				r.fail()
				return
			}
		}
		out = append(out, a)
	}) {
		return nil
	}
	return out
}

func (r *recordReader) ports() []Port {
	out := []Port{}
	if r.list(func() {
		var p Port
		r.object(func(key []byte) uint32 {
			switch string(key) {
			case "name":
				p.Name = r.interned()
				return 1 << 0
			case "protocol":
				p.Protocol = r.interned()
				return 1 << 1
			case "port":
				p.Port = r.port()
				return 1 << 2
			}
			return 0
		})
		out = append(out, p)
	}) {
		return nil
	}
	return out
}

// service reads s, and reports whether the whole input was in the form.
func (r *recordReader) service(s *Service) bool {
	r.object(func(key []byte) uint32 {
		switch string(key) {
		case "ns":
			s.Namespace = r.interned()
			return 1 << 0
		case "name":
			s.Name = r.str()
			return 1 << 1
		case "type":
			s.Type = r.interned()
			return 1 << 2
		case "ips":
			s.ClusterIPs = r.addrs()
			return 1 << 3
		case "headless":
			s.Headless = r.boolean()
			return 1 << 4
		case "externalName":
			s.ExternalName = r.str()
			return 1 << 5
		case "ports":
			s.Ports = r.ports()
			return 1 << 6
		case "publishNotReady":
			s.PublishNotReadyAddresses = r.boolean()
			return 1 << 7
		}
		return 0
	})
	return r.done()
}

// slice reads e, and reports whether the whole input was in the form.
func (r *recordReader) slice(e *EndpointSlice) bool {
	r.object(func(key []byte) uint32 {
		switch string(key) {
		case "ns":
			e.Namespace = r.interned()
			return 1 << 0
		case "name":
			e.Name = r.str()
			return 1 << 1
		case "service":
			e.Service = r.str()
			return 1 << 2
		case "ports":
			e.Ports = r.ports()
			return 1 << 3
		case "endpoints":
			e.Endpoints = r.endpoints()
			return 1 << 4
		}
		return 0
	})
	return r.done()
}

func (r *recordReader) endpoints() []Endpoint {
	out := []Endpoint{}
	if r.list(func() {
		var ep Endpoint
		r.object(func(key []byte) uint32 {
			switch string(key) {
			case "addrs":
				ep.Addresses = r.addrs()
				return 1 << 0
			case "hostname":
				ep.Hostname = r.str()
				return 1 << 1
			case "ready":
				ep.Ready = r.boolean()
				return 1 << 2
			case "pod":
				ep.PodName = r.str()
				return 1 << 3
			case "node":
				ep.NodeName = r.interned()
				return 1 << 4
			}
			return 0
		})
		out = append(out, ep)
	}) {
		return nil
	}
	return out
}
