package resolver

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/kdnsd/kdnsd/dnswire"
	"github.com/kdnsd/kdnsd/fsm"
)

// TestIncrementalEqualsFull applies random batches of changes to a View
// and checks, after each, that the index built from the previous one is
// the index a fresh build of the same View gives, name by name. The
// changes are made to clash: services whose names differ only in case,
// headless services sharing endpoint addresses (PTR and pod names),
// custom records at and below services' names, and changes of TTL and pod
// mode, which rebuild everything.
func TestIncrementalEqualsFull(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			incr := newTestResolver(t, nil)
			v := fsm.NewView(1, nil, nil)
			for step := range 150 {
				var cmds []fsm.Command
				for range 1 + rng.IntN(4) {
					cmds = append(cmds, randomCommand(rng))
				}
				v = v.Apply(v.Index()+1, cmds...)
				incr.Update(v)
				full := newTestResolver(t, v)
				if diff := indexDiff(incr.idx.Load(), full.idx.Load()); diff != "" {
					t.Fatalf("step %d, after %v: incremental index differs from a full build: %s", step, cmds, diff)
				}
			}
		})
	}
}

// randomCommand returns one change of a small cluster where names clash.
func randomCommand(rng *rand.Rand) fsm.Command {
	namespaces := []string{"a", "b"}
	names := []string{"web", "Web", "db", "hl", "HL", "ext", "kube-dns"}
	ns, name := namespaces[rng.IntN(len(namespaces))], names[rng.IntN(len(names))]
	if name == "kube-dns" {
		ns = "kube-system"
	}
	addr := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + rng.IntN(4))}) }
	ports := []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}
	switch rng.IntN(9) {
	case 0:
		return fsm.DeleteService(fsm.ServiceKey{Namespace: ns, Name: name})
	case 1, 2:
		s := &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{addr()}, Ports: ports}
		switch rng.IntN(3) {
		case 0:
			s.ClusterIPs, s.Headless = nil, true
		case 1:
			s.ClusterIPs, s.Type, s.ExternalName = nil, fsm.TypeExternalName, "web.a.svc.cluster.local"
		}
		return fsm.UpsertService(s)
	case 3, 4:
		e := &fsm.EndpointSlice{Namespace: ns, Name: fmt.Sprint(name, "-", rng.IntN(2)), Service: name, Ports: ports}
		for range rng.IntN(3) {
			ep := fsm.Endpoint{Addresses: []netip.Addr{addr()}, Ready: rng.IntN(4) > 0}
			if rng.IntN(2) == 0 {
				ep.Hostname = []string{"h0", "h1", "_tcp"}[rng.IntN(3)]
			}
			e.Endpoints = append(e.Endpoints, ep)
		}
		return fsm.UpsertSlice(e)
	case 5:
		return fsm.DeleteSlice(fsm.SliceKey{Namespace: ns, Name: fmt.Sprint(name, "-", rng.IntN(2))})
	case 6:
		return fsm.SetTracked(fsm.Tracked{Pods: rng.IntN(2) == 0, Namespaces: rng.IntN(2) == 0})
	case 7:
		return fsm.UpsertPod(&fsm.Pod{Namespace: ns, Name: name, IPs: []netip.Addr{addr()}})
	}
	cfg := &fsm.DNSConfig{Source: "test", TTL: uint32(rng.IntN(2) * 7),
		PodMode: []string{"", PodInsecure, PodVerified, PodDisabled}[rng.IntN(4)]}
	for _, n := range []string{"web.a.svc.cluster.local.", "x.web.a.svc.cluster.local.", "a.svc.cluster.local.",
		"1.0.0.10.in-addr.arpa.", "other.example.", "deep.x.b.svc.cluster.local.", "b.svc.cluster.local."} {
		if rng.IntN(2) == 0 {
			cfg.Records = append(cfg.Records, fsm.Record{Name: n, Type: "A", Data: "192.0.2.1"})
		}
	}
	return fsm.SetConfig(cfg)
}

// indexDiff describes how a and b differ in what they serve, or returns "".
func indexDiff(a, b *index) string {
	if a.nodes.Len() != b.nodes.Len() {
		return fmt.Sprintf("%d names, want %d", a.nodes.Len(), b.nodes.Len())
	}
	for name, nb := range b.nodes.All() {
		na, ok := a.nodes.Get(name)
		switch {
		case !ok:
			return fmt.Sprintf("%s missing", dnswire.Presentation(name))
		case (na == ent) != (nb == ent) || (na == soleEnt) != (nb == soleEnt) || !reflect.DeepEqual(na, nb):
			return fmt.Sprintf("%s: node %+v, want %+v", dnswire.Presentation(name), na, nb)
		}
	}
	if a.shadowed != b.shadowed {
		return fmt.Sprintf("%d custom records shadowed, want %d", a.shadowed, b.shadowed)
	}
	if len(a.base) != len(b.base) {
		return fmt.Sprintf("%d base names, want %d", len(a.base), len(b.base))
	}
	return ""
}

// TestParallelBuildEqualsOneByOne: a full build of many services, whose
// names are made on several cores, in more than one batch (rebuildBatch),
// gives the index that adding the same services a few at a time (names
// made in turn) gives. The services clash
// as randomCommand's do: names that differ in case, addresses that several
// services have.
func TestParallelBuildEqualsOneByOne(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var cmds []fsm.Command
	for i := range rebuildBatch + 1000 {
		ns, name := fmt.Sprint("ns", i%3), fmt.Sprint("s", i/2)
		if i%2 == 1 {
			name = fmt.Sprint("S", i/2)
		}
		addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i%50)})
		ports := []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}
		s := &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{addr}, Ports: ports}
		switch i % 5 {
		case 1, 2:
			s.ClusterIPs, s.Headless = nil, true
		case 3:
			s.ClusterIPs, s.Type, s.ExternalName = nil, fsm.TypeExternalName, "web.ns0.svc.cluster.local"
		}
		e := &fsm.EndpointSlice{Namespace: ns, Name: name + "-a", Service: name, Ports: ports}
		for j := range 3 {
			ep := fsm.Endpoint{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 1, 0, byte(1 + (i+j)%40)})}, Ready: j > 0}
			if j == 1 {
				ep.Hostname = "h1"
			}
			e.Endpoints = append(e.Endpoints, ep)
		}
		cmds = append(cmds, fsm.UpsertService(s), fsm.UpsertSlice(e))
	}
	cmds = append(cmds, fsm.SetTracked(fsm.Tracked{Namespaces: true}))
	oneByOne := newTestResolver(t, nil)
	v := fsm.NewView(1, nil, nil)
	for batch := range slices.Chunk(cmds, 50) {
		v = v.Apply(v.Index()+1, batch...)
		oneByOne.Update(v)
	}
	full := newTestResolver(t, v)
	if diff := indexDiff(full.idx.Load(), oneByOne.idx.Load()); diff != "" {
		t.Fatalf("a full build differs from adding services a few at a time: %s", diff)
	}
}
