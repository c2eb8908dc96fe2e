package fsm

import (
	"slices"
	"sync"
	"unique"
)

// A replica holds every record for its life, and most of their small parts
// are the same in many records: a namespace's name in each of its services
// and slices, "ClusterIP", "TCP", and above all the few port lists a
// cluster uses (http/TCP/80 in thousands of services). compact gives each
// record the copy the replica already holds: at 100k services and their
// slices, 12 of a follower's 143 MB of live heap (BENCHMARKS.md), most of
// it the port lists. Records are never modified, so sharing is safe.

// intern returns the process's copy of s. Package unique keeps a copy
// while a handle to it lives, and records keep strings, not handles: a
// collection forgets the copies, and s interned after it is a new one. So
// records interned across collections share one copy for each collection
// cycle, not for the process's life — a few copies of each name, where
// records are many.
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// sharedPortsMax is the longest port list shared: longer lists are rare
// and seldom alike.
const sharedPortsMax = 2

// portListsMax bounds portLists: a cluster uses far fewer lists, and a
// full table starts again (records keep the arrays they were given).
const portListsMax = 4096

// portList is a port list of up to sharedPortsMax ports as a map key.
type portList struct {
	n     int
	ports [sharedPortsMax]Port
}

// portLists maps each short port list compact has seen to its array.
var portLists = struct {
	sync.Mutex
	m map[portList][]Port
}{m: map[portList][]Port{}}

// sharedPorts returns ps in an array of its length, with its strings
// interned: for a short list, the array of an equal list seen before.
// nil and empty stay apart, as the decoders made them.
func sharedPorts(ps []Port) []Port {
	if len(ps) == 0 || len(ps) > sharedPortsMax {
		ps = exact(ps)
		internPorts(ps)
		return ps
	}
	k := portList{n: len(ps)}
	copy(k.ports[:], ps)
	portLists.Lock()
	defer portLists.Unlock()
	if have, ok := portLists.m[k]; ok {
		return have
	}
	if len(portLists.m) >= portListsMax {
		clear(portLists.m)
	}
	shared := slices.Clone(ps)
	internPorts(shared)
	portLists.m[k] = shared
	return shared
}

func internPorts(ps []Port) {
	for i := range ps {
		ps[i].Name, ps[i].Protocol = intern(ps[i].Name), intern(ps[i].Protocol)
	}
}
