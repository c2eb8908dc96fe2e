package watcher

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
)

// cached is what a term's informers keep of an object: the fsm record it
// translates to (nil when it carries none: a terminated pod, a slice of no
// service; always nil for a namespace, whose existence is its record), and
// the identity and resource version the informer's store and its relists
// need (meta.Accessor reads them through GetObjectMeta).
//
// The informers hold every Service and EndpointSlice of the cluster for the
// whole term. Decoded objects, even with managed fields and annotations
// dropped, took ~290 MB of a leader's live heap at 100k services and their
// slices, ~1.5 KB each (BENCHMARKS.md); their records are a few hundred
// bytes, and nothing when the View already holds an equal one (see
// term.transform). An entry with a record takes its names from it: with
// the View's record, they are the View's strings.
type cached[R any] struct {
	version version
	// record is read and, after a commit, replaced by the term's worker
	// alone (diff, shareCommitted) with an equal one; atomic, since the
	// entry is the informer's.
	record atomic.Pointer[R]
	// unrecorded names an entry without a record; one with a record is
	// named by it. Two strings fewer in each entry, 32 bytes instead of
	// 64: a leader's live heap at 100k services and their slices fell
	// from 162-163 to 153 MiB (BENCHMARKS.md).
	unrecorded *objectName
}

type objectName struct{ namespace, name string }

// version is a resource version in 8 bytes, where a string took a 16-byte
// header in the entry and an allocation of its own: ~5 MB of a leader's
// live heap at 100k services and their slices (BENCHMARKS.md). The API
// server's resource versions are decimal numbers (etcd's revisions), which
// it holds exactly; the API calls them opaque, so any other is held as a
// hash. The informers only compare an object's versions for equality (a
// relisted object whose version is unchanged is no event), and only
// between entries, which hold them alike.
type version uint64

// hashedVersion marks a version held as a hash.
const hashedVersion version = 1 << 63

// versionOf packs the resource version rv.
func versionOf(rv string) version {
	if n, err := strconv.ParseUint(rv, 10, 63); err == nil && strconv.FormatUint(n, 10) == rv {
		return version(n)
	}
	h := fnv.New64a()
	h.Write([]byte(rv))
	return version(h.Sum64()) | hashedVersion
}

// String returns the resource version v was made from, or for one held as
// a hash, a string that is the same exactly when the hash is.
func (v version) String() string {
	if v&hashedVersion != 0 {
		return "#" + strconv.FormatUint(uint64(v&^hashedVersion), 16)
	}
	return strconv.FormatUint(uint64(v), 10)
}

func newCached[R any](namespace, name string, v version, record *R) *cached[R] {
	c := &cached[R]{version: v}
	if record == nil {
		c.unrecorded = &objectName{namespace, name}
	}
	c.record.Store(record)
	return c
}

// names returns the namespace and name of the entry's object.
func (c *cached[R]) names() (namespace, name string) {
	if c.unrecorded != nil {
		return c.unrecorded.namespace, c.unrecorded.name
	}
	switch r := any(c.record.Load()).(type) {
	case *fsm.Service:
		return r.Namespace, r.Name
	case *fsm.EndpointSlice:
		return r.Namespace, r.Name
	case *fsm.Pod:
		return r.Namespace, r.Name
	}
	// Unreachable while every record type the informers cache is a case above.
	panic(fmt.Sprintf("watcher: cache entry with a %T record, which names does not know", c.record.Load()))
}

// GetObjectMeta makes cached a metav1.ObjectMetaAccessor, which is what the
// informer's key function and its relists' resync check look for.
func (c *cached[R]) GetObjectMeta() metav1.Object {
	namespace, name := c.names()
	return &metav1.ObjectMeta{Namespace: namespace, Name: name, ResourceVersion: c.version.String()}
}

// GetObjectKind and DeepCopyObject make cached a runtime.Object, which the
// items of a list must be (listInPages).
func (c *cached[R]) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the entry; the record is immutable and shared.
func (c *cached[R]) DeepCopyObject() runtime.Object {
	namespace, name := c.names()
	return newCached(namespace, name, c.version, c.record.Load())
}

// entry marks the cache entries, which transform passes through: the
// entries of a list (listInPages) come to it again.
func (c *cached[R]) entry() {}

// sameAs returns have, the View's record, when it equals rec, else rec.
func sameAs[R any, P interface {
	*R
	Equal(*R) bool
}](rec, have P) P {
	if rec != nil && have != nil && have.Equal((*R)(rec)) {
		return have
	}
	return rec
}

// transform is the informers' transform: it translates each object the API
// server sends into what the informer caches. A record equal to the one
// the View holds is replaced by the View's, so that a term that finds the
// View up to date (a new leader's resync, a relist) caches no second copy
// of the record set. Records are immutable, so sharing them is safe.
func (t *term) transform(obj any) (any, error) {
	if _, ok := obj.(interface{ entry() }); ok {
		return obj, nil
	}
	view := t.w.views.View()
	switch o := obj.(type) {
	case *corev1.Service:
		rec := ServiceFrom(o)
		rec = sameAs(rec, view.Service(rec.Key()))
		return newCached(rec.Namespace, rec.Name, versionOf(o.ResourceVersion), rec), nil
	case *discoveryv1.EndpointSlice:
		rec, ok := SliceFrom(o)
		if !ok {
			return newCached[fsm.EndpointSlice](o.Namespace, o.Name, versionOf(o.ResourceVersion), nil), nil
		}
		rec = sameAs(rec, view.Slice(rec.Key()))
		return newCached(rec.Namespace, rec.Name, versionOf(o.ResourceVersion), rec), nil
	case *corev1.Pod:
		rec, ok := PodFrom(o)
		if !ok {
			return newCached[fsm.Pod](o.Namespace, o.Name, versionOf(o.ResourceVersion), nil), nil
		}
		rec = sameAs(rec, view.Pod(rec.Key()))
		return newCached(rec.Namespace, rec.Name, versionOf(o.ResourceVersion), rec), nil
	case *corev1.Namespace:
		return newCached[struct{}]("", o.Name, versionOf(o.ResourceVersion), nil), nil
	}
	return nil, fmt.Errorf("watcher: informer sent a %T, which has no record", obj)
}

// record returns the record the informer store holds for namespace/name
// (namespace empty for a namespace): nil, false when it holds no such
// object; nil, true for an object without records.
func record[R any](store cache.Store, namespace, name string) (*R, bool, error) {
	c, err := entryOf[R](store, namespace, name)
	if c == nil {
		return nil, false, err
	}
	return c.record.Load(), true, nil
}

// entryOf returns the cache entry store holds for namespace/name, or nil.
func entryOf[R any](store cache.Store, namespace, name string) (*cached[R], error) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := store.GetByKey(key)
	if err != nil || !exists {
		return nil, err
	}
	c, ok := obj.(*cached[R])
	if !ok {
		return nil, fmt.Errorf("watcher: informer store holds a %T under %s", obj, key)
	}
	return c, nil
}

// shareCommitted makes the cache entries of keys, whose changes were just
// committed, hold the View's records where they are equal. transform
// shares what the View held when an object came; without this a leader
// would keep a second copy of everything its own term wrote (the whole
// record set on a new cluster's first leader).
func (t *term) shareCommitted(keys []key) {
	view := t.w.views.View()
	for _, k := range keys {
		switch k.kind {
		case kindService:
			share(t.services.GetStore(), k, view.Service(fsm.ServiceKey{Namespace: k.namespace, Name: k.name}))
		case kindSlice:
			share(t.slices.GetStore(), k, view.Slice(fsm.SliceKey{Namespace: k.namespace, Name: k.name}))
		case kindPod:
			if t.pods != nil {
				share(t.pods.GetStore(), k, view.Pod(fsm.PodKey{Namespace: k.namespace, Name: k.name}))
			}
		}
	}
}

// share makes the cache entry of k in store hold have, the View's record,
// if it holds an equal one.
func share[R any, P interface {
	*R
	Equal(*R) bool
}](store cache.Store, k key, have P) {
	c, _ := entryOf[R](store, k.namespace, k.name)
	if c == nil || have == nil {
		return
	}
	rec := c.record.Load()
	if P(rec) != have && sameAs(P(rec), have) == have {
		c.record.CompareAndSwap(rec, (*R)(have))
	}
}

// pagedInformer returns an informer of every r, in cache entries
// (transform), whose lists come in pages that are turned into entries
// before the next page is asked for (Config.ListPageSize).
//
// An informer's own list asks for resourceVersion 0, which the API server
// answers from its cache in one response, whatever the page size: the
// leader would hold every Service and EndpointSlice of the cluster decoded
// at once besides the entries made from them (a new leader's anonymous
// memory after its resync at 100k services: 1.50 GB, 0.76-0.83 GB in
// pages; BENCHMARKS.md). A list here asks for the most recent state, which
// the API server pages, so only one page is decoded at a time. A relist
// from a resource version keeps it, and its errors (410 Gone) go to the
// reflector unchanged, which then lists again from the most recent state.
func pagedInformer(t *term, r *kubeclient.Resource) (cache.SharedIndexInformer, error) {
	lw := kubeclient.ListWatch(t.w.client, r, "", nil)
	list := lw.ListWithContextFunc
	lw.ListWithContextFunc = func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return listInPages(ctx, t, r.Name, opts, list)
	}
	// Resync 0: a relist after a watch failure already replays every
	// object and the diff against the View makes that cheap; periodic
	// resyncs would only repeat it.
	inf := cache.NewSharedIndexInformer(kubeclient.ListWatchOnly(lw), r.Example, 0, cache.Indexers{})
	if err := inf.SetTransform(t.transform); err != nil {
		return nil, fmt.Errorf("watcher: %s transform: %w", r.Name, err)
	}
	return inf, nil
}

// listInPages lists every object in pages and returns their cache entries
// as one list, at the resource version of the first page, and logs how
// many it read in how many pages.
func listInPages(ctx context.Context, t *term, resource string, opts metav1.ListOptions, list cache.ListWithContextFunc) (runtime.Object, error) {
	start := time.Now()
	if opts.ResourceVersion == "0" {
		opts.ResourceVersion = ""
	}
	opts.Limit = t.w.pageSize
	out := &metav1.List{}
	for pages := 1; ; pages++ {
		page, err := list(ctx, opts)
		if err != nil {
			return nil, err
		}
		lm, err := apimeta.ListAccessor(page)
		if err != nil {
			return nil, err
		}
		items, err := apimeta.ExtractList(page)
		if err != nil {
			return nil, err
		}
		for _, obj := range items {
			c, err := t.transform(obj)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, runtime.RawExtension{Object: c.(runtime.Object)})
		}
		if out.ResourceVersion == "" {
			out.ResourceVersion = lm.GetResourceVersion()
		}
		if lm.GetContinue() == "" {
			t.log.Info("listed", "resource", resource, "objects", len(out.Items), "pages", pages,
				"resource_version", out.ResourceVersion, "took", time.Since(start).Round(time.Millisecond))
			return out, nil
		}
		opts.Continue, opts.ResourceVersion = lm.GetContinue(), ""
	}
}
