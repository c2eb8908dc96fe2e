package watcher

import (
	"context"
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient/kubeclienttest"
)

// TestTransform: what the informers cache of each kind of object is its
// record, the View's own when equal, under the object's key and resource
// version; an object of another kind is an error.
func TestTransform(t *testing.T) {
	web := webService(tcpPort("http", 80))
	slice := webSlice(true, webLabel, discoveryv1.AddressTypeIPv4)
	tm, store, _ := unrunTerm(t, web, slice)
	view := store.View()

	withRV := func(m *metav1.ObjectMeta) { m.ResourceVersion = "7" }
	sameWeb := web.DeepCopy()
	withRV(&sameWeb.ObjectMeta)
	moreWeb := webService(tcpPort("http", 80), tcpPort("https", 443))
	withRV(&moreWeb.ObjectMeta)
	sameSlice := slice.DeepCopy()
	withRV(&sameSlice.ObjectMeta)
	unlabelled := webSlice(true, nil, discoveryv1.AddressTypeIPv4)
	withRV(&unlabelled.ObjectMeta)
	pod := func(phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", ResourceVersion: "7"},
			Status:     corev1.PodStatus{Phase: phase, PodIPs: []corev1.PodIP{{IP: "10.244.0.9"}}},
		}
	}
	wantPod, _ := PodFrom(pod(corev1.PodRunning))
	wantMore := ServiceFrom(moreWeb)

	for _, tc := range []struct {
		name string
		obj  any
		key  string
		// check inspects the cache entry.
		check func(t *testing.T, c any)
	}{
		{"service as the View holds it", sameWeb, "ns/web", func(t *testing.T, c any) {
			if got := c.(*cached[fsm.Service]).record.Load(); got != view.Service(fsm.ServiceKey{Namespace: "ns", Name: "web"}) {
				t.Errorf("record %+v is not the View's", got)
			}
		}},
		{"changed service", moreWeb, "ns/web", func(t *testing.T, c any) {
			got := c.(*cached[fsm.Service]).record.Load()
			if !got.Equal(wantMore) || got == view.Service(wantMore.Key()) {
				t.Errorf("record %+v, want a new %+v", got, wantMore)
			}
		}},
		{"slice as the View holds it", sameSlice, "ns/web-1", func(t *testing.T, c any) {
			if got := c.(*cached[fsm.EndpointSlice]).record.Load(); got != view.Slice(fsm.SliceKey{Namespace: "ns", Name: "web-1"}) {
				t.Errorf("record %+v is not the View's", got)
			}
		}},
		{"slice of no service", unlabelled, "ns/web-1", func(t *testing.T, c any) {
			if got := c.(*cached[fsm.EndpointSlice]).record.Load(); got != nil {
				t.Errorf("record %+v, want none", got)
			}
		}},
		{"running pod", pod(corev1.PodRunning), "ns/p", func(t *testing.T, c any) {
			if got := c.(*cached[fsm.Pod]).record.Load(); got == nil || !got.Equal(wantPod) {
				t.Errorf("record %+v, want %+v", got, wantPod)
			}
		}},
		{"terminated pod", pod(corev1.PodSucceeded), "ns/p", func(t *testing.T, c any) {
			if got := c.(*cached[fsm.Pod]).record.Load(); got != nil {
				t.Errorf("record %+v, want none", got)
			}
		}},
		{"namespace", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", ResourceVersion: "7"}}, "ns", func(t *testing.T, c any) {
			if _, ok := c.(*cached[struct{}]); !ok {
				t.Errorf("cached a %T", c)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tm.transform(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			if key, err := cache.MetaNamespaceKeyFunc(c); err != nil || key != tc.key {
				t.Errorf("key %q (%v), want %q", key, err, tc.key)
			}
			if m, err := apimeta.Accessor(c); err != nil || m.GetResourceVersion() != "7" {
				t.Errorf("resource version %v (%v), want 7", m, err)
			}
			// A copy (client-go makes them) has the same names, version
			// and record.
			cp := c.(runtime.Object).DeepCopyObject()
			if key, err := cache.MetaNamespaceKeyFunc(cp); err != nil || key != tc.key {
				t.Errorf("copy's key %q (%v), want %q", key, err, tc.key)
			}
			if m, err := apimeta.Accessor(cp); err != nil || m.GetResourceVersion() != "7" {
				t.Errorf("copy's resource version %v (%v), want 7", m, err)
			}
			if !reflect.DeepEqual(cp, c) {
				t.Errorf("copy %+v differs from %+v", cp, c)
			}
		})
	}

	if c, err := tm.transform(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}}); err == nil {
		t.Errorf("a ConfigMap was cached as %+v", c)
	}
}

// TestVersion: a cache entry's resource version reads back as the API
// server gave it when it is a decimal number, and two entries' versions are
// equal exactly when the objects' were (the informer's test for an
// unchanged object), whatever the version's form.
func TestVersion(t *testing.T) {
	for _, rv := range []string{"1", "7", "123456789", "9223372036854775807"} {
		if got := versionOf(rv).String(); got != rv {
			t.Errorf("version %q reads back as %q", rv, got)
		}
	}
	// Not decimal numbers the API server writes: a leading zero, a sign,
	// too large for 63 bits, another form, none.
	versions := []string{"1", "01", "+1", "9223372036854775808", "18446744073709551616", "v1", "v2", "", " 1"}
	for i, a := range versions {
		for j, b := range versions {
			if same := versionOf(a).String() == versionOf(b).String(); same != (i == j) {
				t.Errorf("versions %q and %q read as equal: %v, want %v", a, b, same, i == j)
			}
		}
	}
}

// TestListInPages: a list asks for the most recent state in pages, follows
// the continue tokens without a resource version, keeps a relist's resource
// version, and returns every page's cache entries at the first page's
// resource version; a page's error ends it.
func TestListInPages(t *testing.T) {
	tm, _, _ := unrunTerm(t)
	pages := []*corev1.ServiceList{
		{ListMeta: metav1.ListMeta{ResourceVersion: "10", Continue: "c1"}, Items: []corev1.Service{*clusterIPService("ns", "a"), *clusterIPService("ns", "b")}},
		{ListMeta: metav1.ListMeta{ResourceVersion: "10", Continue: "c2"}, Items: []corev1.Service{*clusterIPService("ns", "c")}},
		{ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: []corev1.Service{*clusterIPService("other", "a")}},
	}
	for _, tc := range []struct {
		name, rv, wantRV string
		failAt           int // the page whose request fails; -1: none
	}{
		{"initial list", "0", "", -1},
		{"relist from a resource version", "7", "7", -1},
		{"most recent", "", "", -1},
		{"second page fails", "0", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []metav1.ListOptions
			list := func(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				asked = append(asked, opts)
				if len(asked)-1 == tc.failAt {
					return nil, errors.New("page failed")
				}
				return pages[len(asked)-1], nil
			}
			got, err := listInPages(t.Context(), tm, "services", metav1.ListOptions{ResourceVersion: tc.rv, Limit: 1000}, list)
			if tc.failAt >= 0 {
				if err == nil || len(asked) != tc.failAt+1 {
					t.Fatalf("got %v, %v after %d requests, want the page's error", got, err, len(asked))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []metav1.ListOptions{
				{ResourceVersion: tc.wantRV, Limit: DefaultListPageSize},
				{Continue: "c1", Limit: DefaultListPageSize},
				{Continue: "c2", Limit: DefaultListPageSize},
			}
			if !reflect.DeepEqual(asked, want) {
				t.Errorf("requests %+v, want %+v", asked, want)
			}
			l := got.(*metav1.List)
			var keys []string
			for _, it := range l.Items {
				k, err := cache.MetaNamespaceKeyFunc(it.Object)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := it.Object.(*cached[fsm.Service]); !ok {
					t.Errorf("item %s is a %T, not a cache entry", k, it.Object)
				}
				keys = append(keys, k)
			}
			if l.ResourceVersion != "10" || !reflect.DeepEqual(keys, []string{"ns/a", "ns/b", "ns/c", "other/a"}) {
				t.Errorf("list at %q of %v", l.ResourceVersion, keys)
			}
		})
	}
}

// TestShareCommitted: once a change is committed, its cache entry holds
// the View's record instead of its own equal copy; an entry whose record
// differs from the View's keeps its own.
func TestShareCommitted(t *testing.T) {
	tm, store, raft := unrunTerm(t)
	informed := cache.NewStore(cache.MetaNamespaceKeyFunc)
	entry := func(s *corev1.Service) *cached[fsm.Service] {
		t.Helper()
		c, err := tm.transform(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := informed.Update(c); err != nil {
			t.Fatal(err)
		}
		return c.(*cached[fsm.Service])
	}
	web := webService(tcpPort("http", 80))
	committed := entry(web)
	own := committed.record.Load()
	if err := raft.Commit(t.Context(), []fsm.Command{fsm.UpsertService(own)}); err != nil {
		t.Fatal(err)
	}
	k := fsm.ServiceKey{Namespace: "ns", Name: "web"}
	have := store.View().Service(k)
	if have == own {
		t.Fatal("the View holds the watcher's own record: the test cannot tell sharing apart")
	}
	share(informed, svcKey("ns", "web"), have)
	if got := committed.record.Load(); got != have {
		t.Errorf("after the commit the entry holds %p, want the View's %p", got, have)
	}

	changed := entry(webService(tcpPort("http", 80), tcpPort("https", 443)))
	before := changed.record.Load()
	share(informed, svcKey("ns", "web"), have)
	if got := changed.record.Load(); got != before {
		t.Errorf("an entry unlike the View's record was given %+v", got)
	}
}

// unrunTerm is a term that does not run, whose View is that of a store
// seeded with recs (see seededStore).
func unrunTerm(t *testing.T, recs ...runtime.Object) (*term, *fsm.Store, *fakeRaft) {
	t.Helper()
	store, raft := seededStore(t, recs...)
	w, err := New(Config{Client: kubeclienttest.FromClientset(fake.NewClientset()), Views: store, Raft: raft, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return newTerm(w), store, raft
}
