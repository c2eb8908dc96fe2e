package fsm

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"unique"
	"unsafe"
)

// TestCompactShares: records decoded apart share their namespace name,
// type and short port lists once compacted; a longer list is exact but
// its own; a different list is not shared.
func TestCompactShares(t *testing.T) {
	// intern's copies last while a handle to them does: handles held for
	// the test, so that a collection between two decodes cannot give the
	// second a new copy, and no list of an earlier test's copies.
	handles := []unique.Handle[string]{unique.Make("shop"), unique.Make("TCP"), unique.Make("UDP"), unique.Make("http"), unique.Make(TypeClusterIP)}
	defer runtime.KeepAlive(handles)
	portLists.Lock()
	clear(portLists.m)
	portLists.Unlock()
	decodeOne := func(cmd Command) Command {
		t.Helper()
		data, err := Encode([]Command{cmd})
		if err != nil {
			t.Fatal(err)
		}
		cmds, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		return cmds[0]
	}
	http := []Port{{Name: "http", Protocol: "TCP", Port: 80}}
	three := []Port{{Name: "a", Protocol: "TCP", Port: 1}, {Name: "b", Protocol: "UDP", Port: 2}, {Name: "c", Protocol: "TCP", Port: 3}}
	a := decodeOne(UpsertService(&Service{Namespace: "shop", Name: "a", Type: TypeClusterIP, Ports: http})).Service
	b := decodeOne(UpsertService(&Service{Namespace: "shop", Name: "b", Type: TypeClusterIP, Ports: http})).Service
	c := decodeOne(UpsertService(&Service{Namespace: "shop", Name: "c", Type: TypeClusterIP, Ports: three})).Service
	d := decodeOne(UpsertService(&Service{Namespace: "shop", Name: "d", Type: TypeClusterIP, Ports: three})).Service
	e := decodeOne(UpsertService(&Service{Namespace: "shop", Name: "e", Type: TypeClusterIP, Ports: []Port{{Name: "http", Protocol: "TCP", Port: 8080}}})).Service
	sl := decodeOne(UpsertSlice(&EndpointSlice{Namespace: "shop", Name: "a-x", Service: "a", Ports: http})).Slice

	same := func(what string, x, y string) {
		t.Helper()
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: %q and %q are not one copy", what, x, y)
		}
	}
	same("namespace of two services", a.Namespace, b.Namespace)
	same("namespace of a service and a slice", a.Namespace, sl.Namespace)
	same("type", a.Type, c.Type)
	same("protocol in different lists", a.Ports[0].Protocol, c.Ports[0].Protocol)
	if &a.Ports[0] != &b.Ports[0] || &a.Ports[0] != &sl.Ports[0] {
		t.Error("equal one-port lists are not one array")
	}
	if &a.Ports[0] == &e.Ports[0] || e.Ports[0].Port != 8080 {
		t.Errorf("a different list shares the array: %v", e.Ports)
	}
	if !slices.Equal(c.Ports, three) || !slices.Equal(d.Ports, three) || &c.Ports[0] == &d.Ports[0] {
		t.Errorf("three-port lists: %v, %v, want equal values in arrays of their own", c.Ports, d.Ports)
	}
	for _, s := range []*Service{a, b, c, d, e} {
		assertExact(t, s)
	}
}

// TestPortListsBounded: the table of shared lists starts again when full;
// the records keep the lists they were given.
func TestPortListsBounded(t *testing.T) {
	var kept [][]Port
	for i := range portListsMax + 10 {
		kept = append(kept, sharedPorts([]Port{{Name: fmt.Sprintf("p%d", i), Protocol: "TCP", Port: 80}}))
	}
	portLists.Lock()
	n := len(portLists.m)
	portLists.Unlock()
	if n > portListsMax {
		t.Errorf("the table holds %d lists, more than %d", n, portListsMax)
	}
	for i, ps := range kept {
		if want := fmt.Sprintf("p%d", i); len(ps) != 1 || ps[0].Name != want {
			t.Fatalf("list %d is %v, want one port named %s", i, ps, want)
		}
	}
}
