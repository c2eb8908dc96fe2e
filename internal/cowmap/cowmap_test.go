package cowmap

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

func TestBuilder(t *testing.T) {
	for _, tc := range []struct {
		name string
		from map[string]int
		set  map[string]int
		del  []string
		want map[string]int
	}{
		{"empty", nil, nil, nil, map[string]int{}},
		{"set into empty", nil, map[string]int{"a": 1, "b": 2}, nil, map[string]int{"a": 1, "b": 2}},
		{"replace", map[string]int{"a": 1}, map[string]int{"a": 3}, nil, map[string]int{"a": 3}},
		{"delete", map[string]int{"a": 1, "b": 2}, nil, []string{"a"}, map[string]int{"b": 2}},
		{"delete missing", map[string]int{"a": 1}, nil, []string{"x"}, map[string]int{"a": 1}},
		{"delete all", map[string]int{"a": 1}, nil, []string{"a"}, map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := fromMap(tc.from)
			b := from.Builder()
			for k, v := range tc.set {
				b.Set(k, v)
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

func fromMap(m map[string]int) Map[string, int] {
	b := Map[string, int]{}.Builder()
	for k, v := range m {
		b.Set(k, v)
	}
	return b.Freeze()
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// checkEqual checks m against want by Len, Get, GetBytes and All.
func checkEqual(t *testing.T, m Map[string, int], want map[string]int) {
	t.Helper()
	if m.Len() != len(want) {
		t.Errorf("Len = %d, want %d", m.Len(), len(want))
	}
	if got := maps.Collect(m.All()); !maps.Equal(got, want) {
		t.Errorf("All = %v, want %v", got, want)
	}
	for k, v := range want {
		if got, ok := m.Get(k); !ok || got != v {
			t.Errorf("Get(%q) = %d, %v; want %d", k, got, ok, v)
		}
		if got, ok := GetBytes(m, []byte(k)); !ok || got != v {
			t.Errorf("GetBytes(%q) = %d, %v; want %d", k, got, ok, v)
		}
	}
	if _, ok := GetBytes(m, []byte("absent")); ok && want["absent"] == 0 {
		t.Error("GetBytes finds a key never set")
	}
}

// TestRandom applies random sets and deletes to a Map and to a plain map,
// freezing now and then, and checks that every frozen Map stays what it was.
func TestRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type frozen struct {
		m    Map[string, int]
		want map[string]int
	}
	var history []frozen
	b := Map[string, int]{}.Builder()
	plain := map[string]int{}
	for round := range 300 {
		for range rng.IntN(50) {
			k := fmt.Sprint("k", rng.IntN(2000))
			if rng.IntN(3) == 0 {
				b.Delete(k)
				delete(plain, k)
			} else {
				v := rng.IntN(5)
				b.Set(k, v)
				plain[k] = v
			}
			if got, ok := b.Get(k); got != plain[k] || ok != (plain[k] != 0 || hasKey(plain, k)) {
				t.Fatalf("round %d: builder Get(%q) = %d, %v; want %d", round, k, got, ok, plain[k])
			}
		}
		m := b.Freeze()
		history = append(history, frozen{m, maps.Clone(plain)})
	}
	for _, f := range history {
		checkEqual(t, f.m, f.want)
	}
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// TestStructKey checks a Map keyed by a struct.
func TestStructKey(t *testing.T) {
	type key struct{ ns, name string }
	b := Map[key, int]{}.Builder()
	for i := range 1000 {
		b.Set(key{fmt.Sprint("ns", i%7), fmt.Sprint("n", i)}, i)
	}
	m := b.Freeze()
	for i := range 1000 {
		if v, ok := m.Get(key{fmt.Sprint("ns", i%7), fmt.Sprint("n", i)}); !ok || v != i {
			t.Fatalf("Get(%d) = %d, %v", i, v, ok)
		}
	}
	if _, ok := m.Get(key{"ns0", "n1"}); ok {
		t.Error("Get finds a key never set")
	}
}

func TestGetBytesAllocs(t *testing.T) {
	m := fromMap(map[string]int{"svc-1.ns-0": 1})
	key := []byte("svc-1.ns-0")
	if n := testing.AllocsPerRun(100, func() { GetBytes(m, key) }); n != 0 {
		t.Errorf("GetBytes allocates %v times", n)
	}
}

// BenchmarkGet compares a lookup in a Map with one in a Go map of 600k
// string keys, the size of the DNS index at 100k services.
func BenchmarkGet(b *testing.B) {
	const n = 600000
	plain := make(map[string]int, n)
	bu := Map[string, int]{}.Builder()
	keys := make([][]byte, 1024)
	for i := range n {
		k := fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local", i, i/50)
		plain[k] = i
		bu.Set(k, i)
		if i%(n/len(keys)) == 0 && i/(n/len(keys)) < len(keys) {
			keys[i/(n/len(keys))] = []byte(k)
		}
	}
	m := bu.Freeze()
	b.Run("gomap", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_ = plain[string(keys[i%len(keys)])]
		}
	})
	b.Run("cowmap", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			GetBytes(m, keys[i%len(keys)])
		}
	})
	b.Run("set-one-freeze", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bu := m.Builder()
			bu.Set("svc-10.ns-0.svc.cluster.local", 1)
			bu.Freeze()
		}
	})
}

// TestGrow: a grown builder holds what it held, writes as before, and
// leaves the Map it came from alone.
func TestGrow(t *testing.T) {
	from := fromMap(map[string]int{"a": 1, "b": 2})
	b := from.Builder()
	b.Set("c", 3)
	b.Grow(10000)
	b.Delete("a")
	b.Set("d", 4)
	checkEqual(t, b.Freeze(), map[string]int{"b": 2, "c": 3, "d": 4})
	checkEqual(t, from, map[string]int{"a": 1, "b": 2})
}
