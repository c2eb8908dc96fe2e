// Package cowmap owns persistent hash maps: immutable maps of which a
// changed copy costs what changes, not what the map holds.
//
// A Map is split into a fixed number of shards, each a plain Go map, by a
// hash of the key. A Builder made from a Map copies a shard only on its
// first write to it, and Freeze returns a new Map that shares every shard
// the builder did not write with the Map it came from.
//
// A lookup costs one hash more than a Go map's, and a lookup by []byte of
// a string-keyed Map (GetBytes) allocates nothing, as m[string(b)] does
// not.
package cowmap

import (
	"hash/maphash"
	"iter"
	"maps"
)

// shardBits sets the number of shards: with 600k keys (the DNS names of
// 100k services) a shard holds ~150, so copying one costs a few
// microseconds, and a new Map's shard table (32 KiB) about as much.
const shardBits = 12

const nShards = 1 << shardBits

// seed is the one seed of every Map, so that a string and the same bytes
// hash alike (maphash.String and maphash.Bytes agree under one seed).
var seed = maphash.MakeSeed()

// Map is an immutable map from K to V. The zero Map is empty; Maps are
// values, cheap to copy (a pointer and a count).
type Map[K comparable, V any] struct {
	shards *[nShards]map[K]V
	n      int
}

// shardOf returns the shard index of k.
func shardOf[K comparable](k K) int {
	// A string key is hashed as GetBytes hashes its bytes.
	if s, ok := any(k).(string); ok {
		return int(maphash.String(seed, s) >> (64 - shardBits))
	}
	return int(maphash.Comparable(seed, k) >> (64 - shardBits))
}

// Len returns the number of keys.
func (m Map[K, V]) Len() int { return m.n }

// Get returns the value of k, and whether m holds k.
func (m Map[K, V]) Get(k K) (V, bool) {
	if m.shards == nil {
		var zero V
		return zero, false
	}
	v, ok := m.shards[shardOf(k)][k]
	return v, ok
}

// GetBytes returns the value of the string key b, without allocating.
func GetBytes[V any](m Map[string, V], b []byte) (V, bool) {
	if m.shards == nil {
		var zero V
		return zero, false
	}
	v, ok := m.shards[maphash.Bytes(seed, b)>>(64-shardBits)][string(b)]
	return v, ok
}

// All yields every key and value, in no particular order.
func (m Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if m.shards == nil {
			return
		}
		for _, s := range m.shards {
			for k, v := range s {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// Builder makes a new Map from an old one. Its zero value builds from the
// empty Map. A Builder is not safe for concurrent use; the Map it came from
// is never modified.
type Builder[K comparable, V any] struct {
	m Map[K, V]
	// owned marks the shards this builder copied (or made) and may write,
	// one bit each.
	owned *[nShards / 64]uint64
}

// Builder returns a Builder that starts from m.
func (m Map[K, V]) Builder() *Builder[K, V] { return &Builder[K, V]{m: m} }

// Get returns the value of k in the Map being built.
func (b *Builder[K, V]) Get(k K) (V, bool) { return b.m.Get(k) }

// Len returns the number of keys of the Map being built.
func (b *Builder[K, V]) Len() int { return b.m.n }

// shard returns k's shard, writable.
func (b *Builder[K, V]) shard(k K) map[K]V {
	if b.owned == nil {
		old := b.m.shards
		b.m.shards = new([nShards]map[K]V)
		if old != nil {
			*b.m.shards = *old
		}
		b.owned = new([nShards / 64]uint64)
	}
	i := shardOf(k)
	if bit := uint64(1) << (i % 64); b.owned[i/64]&bit == 0 {
		s := maps.Clone(b.m.shards[i])
		if s == nil {
			s = map[K]V{}
		}
		b.m.shards[i] = s
		b.owned[i/64] |= bit
	}
	return b.m.shards[i]
}

// Grow readies the builder for about n more keys spread over the shards,
// so that building a large Map does not grow each shard step by step: each
// shard is copied into a map with room for what it holds and its share of
// n. No room is added beyond the share: a Go map rounds its table up to a
// power of two, which leaves room for a shard above the mean more often than
// not, and a share made larger crossed that step and doubled the map for
// every shard. It copies every shard, so it is for builds that write most of
// them.
func (b *Builder[K, V]) Grow(n int) {
	if b.owned == nil {
		b.shard(*new(K)) // copies the shard table
	}
	per := n/nShards + 1
	for i := range b.m.shards {
		s := make(map[K]V, len(b.m.shards[i])+per)
		for k, v := range b.m.shards[i] {
			s[k] = v
		}
		b.m.shards[i] = s
		b.owned[i/64] |= uint64(1) << (i % 64)
	}
}

// Set maps k to v.
func (b *Builder[K, V]) Set(k K, v V) {
	s := b.shard(k)
	if _, ok := s[k]; !ok {
		b.m.n++
	}
	s[k] = v
}

// Delete removes k.
func (b *Builder[K, V]) Delete(k K) {
	if _, ok := b.m.Get(k); !ok {
		return // copy no shard for nothing
	}
	delete(b.shard(k), k)
	b.m.n--
}

// Freeze returns the Map built so far. The builder may go on writing: it
// copies again whatever it writes next, so the Map returned never changes.
func (b *Builder[K, V]) Freeze() Map[K, V] {
	b.owned = nil
	return b.m
}
