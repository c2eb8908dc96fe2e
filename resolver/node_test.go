package resolver

import (
	"testing"

	"github.com/kdnsd/kdnsd/dnswire"
)

// TestNode: a node's RRsets, added in order, are found by type, the first
// answers ANY, and a CNAME first answers every type; a node without any is
// an empty non-terminal.
func TestNode(t *testing.T) {
	owner, _ := dnswire.ParseName("web.default.svc.cluster.local.")
	for _, c := range []struct {
		name  string
		types []uint16
		cname bool
	}{
		{"empty", nil, false},
		{"one", []uint16{dnswire.TypeA}, false},
		{"two", []uint16{dnswire.TypeA, dnswire.TypeAAAA}, false},
		{"several", []uint16{dnswire.TypeSOA, dnswire.TypeNS, dnswire.TypeTXT}, false},
		{"cname", []uint16{dnswire.TypeCNAME}, true},
		{"cname first", []uint16{dnswire.TypeCNAME, dnswire.TypeTXT}, true},
		{"cname not first", []uint16{dnswire.TypeTXT, dnswire.TypeCNAME}, false},
	} {
		var b dnswire.Builder
		n := &node{}
		for _, typ := range c.types {
			b.Begin(owner)
			b.TXT(owner, "x") // what the records are does not matter here
			b.Finish(n.add(), typ)
		}
		for _, typ := range []uint16{0, dnswire.TypeA, dnswire.TypeAAAA, dnswire.TypeSOA, dnswire.TypeNS, dnswire.TypeTXT, dnswire.TypeCNAME, dnswire.TypeSRV} {
			want := false
			for _, x := range c.types {
				want = want || x == typ
			}
			if sec := n.set(typ); (sec != nil) != want || sec != nil && sec.Type() != typ {
				t.Errorf("%s: set(%d) = %v, want one: %v", c.name, typ, sec, want)
			}
		}
		switch first := n.first(); {
		case len(c.types) == 0 && first != nil, len(c.types) > 0 && (first == nil || first.Type() != c.types[0]):
			t.Errorf("%s: first = %v, want type %v", c.name, first, c.types)
		}
		if got := n.cname() != nil; got != c.cname {
			t.Errorf("%s: cname %v, want %v", c.name, got, c.cname)
		}
	}
}
