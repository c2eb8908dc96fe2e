package cowtree

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// item is a value that carries its key.
type item struct{ k, v int }

var spec = &Spec[int, *item]{Key: func(i *item) int { return i.k }, Compare: cmp.Compare[int]}

func sameItem(a, b *item) bool { return *a == *b }

func TestBuilder(t *testing.T) {
	for _, tc := range []struct {
		name string
		from map[int]int
		set  map[int]int
		del  []int
		want map[int]int
	}{
		{"empty", nil, nil, nil, map[int]int{}},
		{"set into empty", nil, map[int]int{1: 10, 2: 20}, nil, map[int]int{1: 10, 2: 20}},
		{"replace", map[int]int{1: 10}, map[int]int{1: 30}, nil, map[int]int{1: 30}},
		{"delete", map[int]int{1: 10, 2: 20}, nil, []int{1}, map[int]int{2: 20}},
		{"delete missing", map[int]int{1: 10}, nil, []int{9}, map[int]int{1: 10}},
		{"delete all", map[int]int{1: 10}, nil, []int{1}, map[int]int{}},
		{"set into many", upTo(1000), map[int]int{-1: 1, 500: 1, 5000: 1}, nil, with(upTo(1000), map[int]int{-1: 1, 500: 1, 5000: 1})},
		{"delete most", upTo(1000), nil, keys(upTo(990)), without(upTo(1000), keys(upTo(990)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := fromMap(tc.from)
			b := from.Builder()
			for _, k := range slices.Sorted(maps.Keys(tc.set)) {
				b.Set(&item{k, tc.set[k]})
			}
			for _, k := range tc.del {
				b.Delete(k)
			}
			got := b.Freeze()
			checkEqual(t, got, tc.want)
			checkEqual(t, from, orEmpty(tc.from)) // untouched
		})
	}
}

func upTo(n int) map[int]int {
	m := map[int]int{}
	for i := range n {
		m[i] = i
	}
	return m
}

func keys(m map[int]int) []int { return slices.Sorted(maps.Keys(m)) }

func with(m, more map[int]int) map[int]int {
	out := maps.Clone(m)
	maps.Copy(out, more)
	return out
}

func without(m map[int]int, ks []int) map[int]int {
	out := maps.Clone(m)
	for _, k := range ks {
		delete(out, k)
	}
	return out
}

func fromMap(m map[int]int) Tree[int, *item] {
	b := New(spec).Builder()
	for k, v := range m {
		b.Set(&item{k, v})
	}
	return b.Freeze()
}

func orEmpty(m map[int]int) map[int]int {
	if m == nil {
		return map[int]int{}
	}
	return m
}

// checkEqual checks t against want by Len, Get and All, and the tree's
// shape: every leaf as deep, no node over maxItems, every key between its
// separators.
func checkEqual(tb testing.TB, t Tree[int, *item], want map[int]int) {
	tb.Helper()
	if t.Len() != len(want) {
		tb.Fatalf("Len = %d, want %d", t.Len(), len(want))
	}
	for k, v := range want {
		if got, ok := t.Get(k); !ok || got.v != v {
			tb.Fatalf("Get(%d) = %v, %v; want %d", k, got, ok, v)
		}
	}
	if _, ok := t.Get(-1 << 40); ok {
		tb.Fatal("Get of a key never set found one")
	}
	var order []int
	for it := range t.All() {
		if want[it.k] != it.v {
			tb.Fatalf("All yielded %d: %d, want %d", it.k, it.v, want[it.k])
		}
		order = append(order, it.k)
	}
	if !slices.Equal(order, keys(want)) {
		tb.Fatalf("All yielded keys %v, want %v in order", order, keys(want))
	}
	if t.root != nil {
		checkShape(tb, t.root, t.root.height(), nil, nil)
	}
}

func checkShape(tb testing.TB, n *node[int, *item], height int, lo, hi *int) {
	tb.Helper()
	if n.size() > maxItems {
		tb.Fatalf("node of %d items, over %d", n.size(), maxItems)
	}
	if n.leaf() {
		if height != 0 {
			tb.Fatalf("leaf %d levels above the others", height)
		}
		for _, it := range n.vals {
			if lo != nil && it.k < *lo || hi != nil && it.k >= *hi {
				tb.Fatalf("key %d outside its node's range [%v, %v)", it.k, lo, hi)
			}
		}
		return
	}
	if len(n.seps) != len(n.kids)-1 || !slices.IsSorted(n.seps) {
		tb.Fatalf("separators %v for %d children", n.seps, len(n.kids))
	}
	for i, c := range n.kids {
		clo, chi := lo, hi
		if i > 0 {
			clo = &n.seps[i-1]
		}
		if i < len(n.seps) {
			chi = &n.seps[i]
		}
		checkShape(tb, c, height-1, clo, chi)
	}
}

// TestRandom builds generations of trees by random writes, in random and
// in key order, by new builders and by builders that go on after Freeze,
// and checks each against a Go map, the generations before it unchanged,
// and Diff between any two against the maps' difference.
func TestRandom(t *testing.T) {
	for _, order := range []string{"random", "ascending", "descending"} {
		t.Run(order, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(order))))
			var trees []Tree[int, *item]
			var wants []map[int]int
			tree, want := New(spec), map[int]int{}
			b := tree.Builder()
			for gen := range 30 {
				if gen%3 == 0 { // else the builder goes on after its Freeze
					b = tree.Builder()
				}
				want = maps.Clone(want)
				ops := rng.IntN(600)
				start := rng.IntN(3000)
				for i := range ops {
					k := rng.IntN(3000)
					switch order {
					case "ascending":
						k = start + i
					case "descending":
						k = start - i
					}
					if rng.IntN(4) == 0 && gen > 3 {
						b.Delete(k)
						delete(want, k)
						continue
					}
					v := rng.IntN(5)
					b.Set(&item{k, v})
					want[k] = v
				}
				tree = b.Freeze()
				checkEqual(t, tree, want)
				trees, wants = append(trees, tree), append(wants, want)
			}
			for i, tr := range trees {
				checkEqual(t, tr, wants[i])
			}
			apart := fromMap(wants[len(wants)-1]) // shares nothing with the others
			trees, wants = append(trees, apart, New(spec)), append(wants, wants[len(wants)-1], map[int]int{})
			for i := range trees {
				for j := range trees {
					checkDiff(t, trees[i], trees[j], wants[i], wants[j])
				}
			}
		})
	}
}

func checkDiff(t *testing.T, a, b Tree[int, *item], wa, wb map[int]int) {
	t.Helper()
	var got []int
	for k := range Diff(a, b, sameItem) {
		got = append(got, k)
	}
	slices.Sort(got)
	var want []int
	for k := range with(wa, wb) {
		va, ina := wa[k]
		vb, inb := wb[k]
		if ina != inb || va != vb {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Diff = %v, want %v", got, want)
	}
}

// TestInOrderFillsLeaves: keys written in order leave full leaves behind
// them, not half-full ones (see splitAt).
func TestInOrderFillsLeaves(t *testing.T) {
	const n = 10000
	b := New(spec).Builder()
	for k := range n {
		b.Set(&item{k, k})
	}
	tree := b.Freeze()
	if got, want := len(leaves(tree.root)), (n+maxItems-1)/maxItems; got != want {
		t.Fatalf("%d values written in order make %d leaves, want %d", n, got, want)
	}
	// The first leaf left small beside full ones: no merge may overfill.
	want := upTo(n)
	for k := range maxItems - 4 {
		b.Delete(k)
		delete(want, k)
	}
	checkEqual(t, b.Freeze(), want)
}

// TestWriteCopiesItsPath: a change to one key of a large tree copies the
// nodes on that key's path and nothing else, and Diff finds it by them.
func TestWriteCopiesItsPath(t *testing.T) {
	tree := fromMap(upTo(100000))
	b := tree.Builder()
	b.Set(&item{5000, -1})
	next := b.Freeze()
	fresh := 0
	var count func(n *node[int, *item])
	count = func(n *node[int, *item]) {
		if !inTree(tree.root, n) {
			fresh++
		}
		for _, c := range n.kids {
			count(c)
		}
	}
	count(next.root)
	if want := next.root.height() + 1; fresh != want {
		t.Fatalf("one write made %d nodes, want %d (its path)", fresh, want)
	}
	la, lb := unsharedLeaves(tree.root, next.root)
	if len(la) != 1 || len(lb) != 1 {
		t.Fatalf("Diff walks %d and %d leaves, want 1 and 1", len(la), len(lb))
	}
	if got := slices.Collect(Diff(tree, next, sameItem)); !slices.Equal(got, []int{5000}) {
		t.Fatalf("Diff = %v, want [5000]", got)
	}
}

func inTree(root, n *node[int, *item]) bool {
	if root == n {
		return true
	}
	for _, c := range root.kids {
		if inTree(c, n) {
			return true
		}
	}
	return false
}
