package watcher

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kdnsd/kdnsd/fsm"
)

// cached is what a term's informers keep of an object: the fsm record it
// translates to (nil when it carries none: a terminated pod, a slice of no
// service; always nil for a namespace, whose existence is its record), and
// the identity and resource version the informer's store and its relists
// need (meta.Accessor reads them through GetObjectMeta).
//
// The informers hold every Service and EndpointSlice of the cluster for the
// whole term. A decoded object is one to two kilobytes of fixed-size
// fields and maps even with managed fields and annotations dropped, about
// 440 MB at 100k services and 100k slices; their records are a few hundred
// bytes, and nothing when the View already holds an equal one (see
// term.transform). An entry with a record takes its names from it: with
// the View's record, they are the View's strings.
type cached[R any] struct {
	namespace, name, resourceVersion string
	record                           *R
}

// GetObjectMeta makes cached a metav1.ObjectMetaAccessor, which is what the
// informer's key function and its relists' resync check look for.
func (c *cached[R]) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: c.namespace, Name: c.name, ResourceVersion: c.resourceVersion}
}

// transform is the informers' transform: it translates each object the API
// server sends into what the informer caches. A record equal to the one
// the View holds is replaced by the View's, so that a term that finds the
// View up to date (a new leader's resync, a relist) caches no second copy
// of the record set. Records are immutable, so sharing them is safe.
func (t *term) transform(obj any) (any, error) {
	view := t.w.views.View()
	switch o := obj.(type) {
	case *corev1.Service:
		rec := ServiceFrom(o)
		if have := view.Service(rec.Key()); have != nil && have.Equal(rec) {
			rec = have
		}
		return &cached[fsm.Service]{rec.Namespace, rec.Name, o.ResourceVersion, rec}, nil
	case *discoveryv1.EndpointSlice:
		rec, ok := SliceFrom(o)
		if !ok {
			return &cached[fsm.EndpointSlice]{o.Namespace, o.Name, o.ResourceVersion, nil}, nil
		}
		if have := view.Slice(rec.Key()); have != nil && have.Equal(rec) {
			rec = have
		}
		return &cached[fsm.EndpointSlice]{rec.Namespace, rec.Name, o.ResourceVersion, rec}, nil
	case *corev1.Pod:
		rec, ok := PodFrom(o)
		if !ok {
			return &cached[fsm.Pod]{o.Namespace, o.Name, o.ResourceVersion, nil}, nil
		}
		if have := view.Pod(rec.Key()); have != nil && have.Equal(rec) {
			rec = have
		}
		return &cached[fsm.Pod]{rec.Namespace, rec.Name, o.ResourceVersion, rec}, nil
	case *corev1.Namespace:
		return &cached[struct{}]{"", o.Name, o.ResourceVersion, nil}, nil
	}
	return nil, fmt.Errorf("watcher: informer sent a %T, which has no record", obj)
}

// record returns the record the informer store holds for namespace/name
// (namespace empty for a namespace): nil, false when it holds no such
// object; nil, true for an object without records.
func record[R any](store cache.Store, namespace, name string) (*R, bool, error) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := store.GetByKey(key)
	if err != nil || !exists {
		return nil, false, err
	}
	c, ok := obj.(*cached[R])
	if !ok {
		return nil, false, fmt.Errorf("watcher: informer store holds a %T under %s", obj, key)
	}
	return c.record, true, nil
}
