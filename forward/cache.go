package forward

import (
	"hash/maphash"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// cacheKey identifies a cached answer, and an upstream query in flight.
type cacheKey struct {
	name          string // canonical (lower-case, fully qualified)
	qtype, qclass uint16
	bits          uint8 // keyDO, keyCD, keyRD
}

type cacheEntry struct {
	msg     *dns.Msg // read only
	stored  time.Time
	expires time.Time
}

// cache is a sharded least-recently-used cache of answers (one
// golang-lru cache a shard, so that concurrent queries for different names
// rarely share a lock). Entries are kept past their expiry for the
// serve-stale window.
type cache struct {
	seed   maphash.Seed
	stale  time.Duration // < 0: none
	shards []*lru.Cache[cacheKey, *cacheEntry]
}

func newCache(size int, stale time.Duration) *cache {
	n := 1
	for n < 32 && size/(2*n) >= 64 {
		n *= 2
	}
	c := &cache{seed: maphash.MakeSeed(), stale: stale, shards: make([]*lru.Cache[cacheKey, *cacheEntry], n)}
	for i := range c.shards {
		shardSize := size / n
		if i < size%n {
			shardSize++
		}
		c.shards[i], _ = lru.New[cacheKey, *cacheEntry](max(shardSize, 1)) // errors only for size < 1
	}
	return c
}

func (c *cache) shard(k cacheKey) *lru.Cache[cacheKey, *cacheEntry] {
	if len(c.shards) == 1 {
		return c.shards[0]
	}
	return c.shards[maphash.String(c.seed, k.name)%uint64(len(c.shards))]
}

// get returns a copy of the answer for k, TTLs decremented by its age:
// only while it is fresh, or with allowStale also within the serve-stale
// window after (stale is then true, and the TTLs are for the caller to set).
func (c *cache) get(k cacheKey, now time.Time, allowStale bool) (m *dns.Msg, stale, ok bool) {
	s := c.shard(k)
	e, found := s.Get(k)
	if !found {
		return nil, false, false
	}
	if !now.Before(e.expires) {
		if c.stale < 0 || !now.Before(e.expires.Add(c.stale)) {
			s.Remove(k)
			return nil, false, false
		}
		if !allowStale {
			return nil, false, false
		}
		stale = true
	}
	m = e.msg.Copy()
	if stale {
		return m, true, true
	}
	age := uint32(max(now.Sub(e.stored), 0) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl -= min(h.Ttl, age)
		}
	}
	return m, false, true
}

// set caches msg, which it keeps, for ttl seconds from now.
func (c *cache) set(k cacheKey, msg *dns.Msg, now time.Time, ttl uint32) {
	c.shard(k).Add(k, &cacheEntry{msg: msg, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)})
}

// len returns the number of entries, stale ones included.
func (c *cache) len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}
