// Package cowtree owns persistent ordered maps: copy-on-write B+trees of
// values that carry their own keys.
//
// A Builder made from a Tree copies a node only on its first write to it,
// and Freeze returns a new Tree that shares every node the builder did not
// write with the Tree it came from. Two Trees can therefore be compared
// (Diff) by walking only the nodes they do not share; Trees that share
// nothing are compared in full, with the same result.
//
// Why a tree where internal/cowmap hashes keys into shards: keys written
// together in key order (a sync lists objects by namespace and name) land
// in a few leaves, so a batch copies a few small nodes where a hash map
// copies a shard for each key, and the copies a long sync leaves behind do
// not hold the heap's pages apart. A value costs its own size in a leaf
// (a pointer, for records), where a Go map slot also holds the key.
package cowtree

import (
	"iter"
	"slices"
)

// Spec says how the values of a Tree are keyed and ordered: Key returns a
// value's key, Compare orders keys as cmp.Compare does.
type Spec[K, V any] struct {
	Key     func(V) K
	Compare func(a, b K) int
}

// Tree is an immutable ordered map from keys to values that hold them.
// Trees are values, cheap to copy. Make one with New; the zero Tree is not
// usable.
type Tree[K, V any] struct {
	spec *Spec[K, V]
	root *node[K, V]
	n    int
}

// New returns an empty Tree of spec.
func New[K, V any](spec *Spec[K, V]) Tree[K, V] { return Tree[K, V]{spec: spec} }

// maxItems bounds the values of a leaf and the children of an inner node:
// a leaf of pointers is 512 bytes, and a tree of 100k values three levels
// deep.
const maxItems = 64

// minItems is the size below which a node is merged with a neighbour that
// has room for it.
const minItems = maxItems / 4

// node is a leaf (kids nil: vals sorted by key) or an inner node: kids[i]
// holds the keys from seps[i-1] (inclusive) up to seps[i], so seps has one
// element fewer than kids.
type node[K, V any] struct {
	// owner is the builder token that may modify this node in place; a
	// node whose token is not the builder's current one is shared.
	owner *token
	vals  []V
	seps  []K
	kids  []*node[K, V]
}

// token marks the nodes one builder made between two Freezes. It has a
// size so that each new token has its own address.
type token struct{ _ byte }

func (n *node[K, V]) leaf() bool { return n.kids == nil }

func (n *node[K, V]) size() int {
	if n.leaf() {
		return len(n.vals)
	}
	return len(n.kids)
}

// height is the number of inner levels below and at n: 0 for a leaf.
func (n *node[K, V]) height() int {
	h := 0
	for ; !n.leaf(); n = n.kids[0] {
		h++
	}
	return h
}

// Len returns the number of values.
func (t Tree[K, V]) Len() int { return t.n }

// kid returns the index of n's child that holds k.
func (t Tree[K, V]) kid(n *node[K, V], k K) int {
	i, found := slices.BinarySearchFunc(n.seps, k, t.spec.Compare)
	if found {
		return i + 1
	}
	return i
}

// search returns the position of k in leaf n, and whether n holds it.
func (t Tree[K, V]) search(n *node[K, V], k K) (int, bool) {
	return slices.BinarySearchFunc(n.vals, k, func(v V, k K) int { return t.spec.Compare(t.spec.Key(v), k) })
}

// Get returns the value of k, and whether t holds k.
func (t Tree[K, V]) Get(k K) (V, bool) {
	n := t.root
	if n == nil {
		var zero V
		return zero, false
	}
	for !n.leaf() {
		n = n.kids[t.kid(n, k)]
	}
	if i, ok := t.search(n, k); ok {
		return n.vals[i], true
	}
	var zero V
	return zero, false
}

// All yields every value in key order.
func (t Tree[K, V]) All() iter.Seq[V] {
	return func(yield func(V) bool) {
		if t.root != nil {
			walk(t.root, yield)
		}
	}
}

func walk[K, V any](n *node[K, V], yield func(V) bool) bool {
	if n.leaf() {
		for _, v := range n.vals {
			if !yield(v) {
				return false
			}
		}
		return true
	}
	for _, c := range n.kids {
		if !walk(c, yield) {
			return false
		}
	}
	return true
}

// Builder makes a new Tree from an old one; the Tree it came from is never
// modified. A Builder is not safe for concurrent use.
type Builder[K, V any] struct {
	t   Tree[K, V]
	tok *token
}

// Builder returns a Builder that starts from t.
func (t Tree[K, V]) Builder() *Builder[K, V] { return &Builder[K, V]{t: t, tok: new(token)} }

// Get returns the value of k in the Tree being built.
func (b *Builder[K, V]) Get(k K) (V, bool) { return b.t.Get(k) }

// Freeze returns the Tree built so far. The builder may go on writing: it
// copies again whatever it writes next, so the Tree returned never changes.
func (b *Builder[K, V]) Freeze() Tree[K, V] {
	b.tok = new(token)
	return b.t
}

// writable returns n, or a copy of it that b may modify.
func (b *Builder[K, V]) writable(n *node[K, V]) *node[K, V] {
	if n.owner == b.tok {
		return n
	}
	return &node[K, V]{owner: b.tok, vals: slices.Clone(n.vals), seps: slices.Clone(n.seps), kids: slices.Clone(n.kids)}
}

// Set maps v's key to v.
func (b *Builder[K, V]) Set(v V) {
	if b.t.root == nil {
		b.t.root = &node[K, V]{owner: b.tok, vals: []V{v}}
		b.t.n = 1
		return
	}
	b.t.root = b.writable(b.t.root)
	right, sep, added := b.insert(b.t.root, b.t.spec.Key(v), v)
	if added {
		b.t.n++
	}
	if right != nil {
		b.t.root = &node[K, V]{owner: b.tok, seps: []K{sep}, kids: []*node[K, V]{b.t.root, right}}
	}
}

// insert puts v under k into the writable node n. When n overflows it
// splits: the new right half comes back with its lowest key.
func (b *Builder[K, V]) insert(n *node[K, V], k K, v V) (right *node[K, V], sep K, added bool) {
	if n.leaf() {
		i, found := b.t.search(n, k)
		if found {
			n.vals[i] = v
			return nil, sep, false
		}
		n.vals = slices.Insert(n.vals, i, v)
		if len(n.vals) <= maxItems {
			return nil, sep, true
		}
		at := splitAt(i, len(n.vals))
		right = &node[K, V]{owner: b.tok, vals: slices.Clone(n.vals[at:])}
		clear(n.vals[at:])
		n.vals = n.vals[:at]
		return right, b.t.spec.Key(right.vals[0]), true
	}
	i := b.t.kid(n, k)
	n.kids[i] = b.writable(n.kids[i])
	kr, ks, added := b.insert(n.kids[i], k, v)
	if kr == nil {
		return nil, sep, added
	}
	n.kids = slices.Insert(n.kids, i+1, kr)
	n.seps = slices.Insert(n.seps, i, ks)
	if len(n.kids) <= maxItems {
		return nil, sep, added
	}
	at := splitAt(i+1, len(n.kids))
	right = &node[K, V]{owner: b.tok, kids: slices.Clone(n.kids[at:]), seps: slices.Clone(n.seps[at:])}
	sep = n.seps[at-1]
	clear(n.kids[at:])
	clear(n.seps[at-1:])
	n.kids = n.kids[:at]
	n.seps = n.seps[:at-1]
	return right, sep, added
}

// splitAt is where a node of size items that overflowed by an insert at
// position i splits. In halves, unless the insert was the last item: keys
// written in order then leave full nodes behind them, not half-full ones.
func splitAt(i, size int) int {
	if i == size-1 {
		return size - 1
	}
	return size / 2
}

// Delete removes k.
func (b *Builder[K, V]) Delete(k K) {
	if _, ok := b.t.Get(k); !ok {
		return // copy no node for nothing
	}
	b.t.root = b.writable(b.t.root)
	b.remove(b.t.root, k)
	b.t.n--
	for r := b.t.root; !r.leaf() && len(r.kids) == 1; r = b.t.root {
		b.t.root = r.kids[0]
	}
	if b.t.root.leaf() && len(b.t.root.vals) == 0 {
		b.t.root = nil
	}
}

// remove takes k, which the tree holds, out of the writable node n, and
// merges a child left small with a neighbour that has room for it.
func (b *Builder[K, V]) remove(n *node[K, V], k K) {
	if n.leaf() {
		i, _ := b.t.search(n, k)
		n.vals = slices.Delete(n.vals, i, i+1)
		return
	}
	i := b.t.kid(n, k)
	n.kids[i] = b.writable(n.kids[i])
	b.remove(n.kids[i], k)
	if n.kids[i].size() >= minItems || len(n.kids) == 1 {
		return
	}
	l := i // merge kids l and l+1
	if i == len(n.kids)-1 {
		l = i - 1
	}
	if n.kids[l].size()+n.kids[l+1].size() > maxItems {
		return
	}
	left, right := b.writable(n.kids[l]), n.kids[l+1]
	if left.leaf() {
		left.vals = append(left.vals, right.vals...)
	} else {
		left.seps = append(append(left.seps, n.seps[l]), right.seps...)
		left.kids = append(left.kids, right.kids...)
	}
	n.kids[l] = left
	n.kids = slices.Delete(n.kids, l+1, l+2)
	n.seps = slices.Delete(n.seps, l, l+1)
}

// Diff yields the key of every value that a and b do not hold alike: held
// by one of them only, or by both with values that eq says differ. Each key
// comes once. It walks only the nodes a and b do not share.
func Diff[K, V any](a, b Tree[K, V], eq func(V, V) bool) iter.Seq[K] {
	return func(yield func(K) bool) {
		la, lb := unsharedLeaves(a.root, b.root)
		for _, l := range la {
			for _, va := range l.vals {
				k := a.spec.Key(va)
				if vb, ok := b.Get(k); !ok || !eq(va, vb) {
					if !yield(k) {
						return
					}
				}
			}
		}
		// A key of b's own leaves that a holds lies in one of a's own
		// leaves (a shared leaf holds the same keys in both), so only the
		// keys a lacks are left to yield.
		for _, l := range lb {
			for _, vb := range l.vals {
				k := b.spec.Key(vb)
				if _, ok := a.Get(k); !ok {
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}

// unsharedLeaves returns the leaves of the trees rooted at a and b that
// the other does not hold. A node shared by two trees is as high in both
// (its height is its subtree's), so the trees are walked down one height
// at a time, dropping at each the nodes both hold.
func unsharedLeaves[K, V any](a, b *node[K, V]) (la, lb []*node[K, V]) {
	if a == nil || b == nil {
		return leaves(a), leaves(b)
	}
	ha, hb := a.height(), b.height()
	h := min(ha, hb)
	fa, fb := descend([]*node[K, V]{a}, ha-h), descend([]*node[K, V]{b}, hb-h)
	for {
		// own marks a's nodes at this height that b does not hold.
		own := make(map[*node[K, V]]bool, len(fa))
		for _, n := range fa {
			own[n] = true
		}
		fb = slices.DeleteFunc(fb, func(n *node[K, V]) bool {
			if !own[n] {
				return false
			}
			own[n] = false // shared
			return true
		})
		fa = slices.DeleteFunc(fa, func(n *node[K, V]) bool { return !own[n] })
		if h == 0 {
			return fa, fb
		}
		fa, fb = descend(fa, 1), descend(fb, 1)
		h--
	}
}

// leaves returns every leaf under n (none for nil).
func leaves[K, V any](n *node[K, V]) []*node[K, V] {
	if n == nil {
		return nil
	}
	return descend([]*node[K, V]{n}, n.height())
}

// descend returns the nodes levels below ns.
func descend[K, V any](ns []*node[K, V], levels int) []*node[K, V] {
	for range levels {
		var kids []*node[K, V]
		for _, n := range ns {
			kids = append(kids, n.kids...)
		}
		ns = kids
	}
	return ns
}
