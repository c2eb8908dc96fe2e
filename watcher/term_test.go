package watcher

// Pure tests of a term's parts: no API server, informers on a
// fake clientset. The real-API tests in controller_test.go are the evidence
// that the parts work together against kube-apiserver.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient/kubeclienttest"
)

// pureTerm is a term whose informers cache objs (through informers on a fake
// clientset, with the term's own transform) and whose View is store's.
func pureTerm(t *testing.T, store *fsm.Store, raft Committer, objs ...runtime.Object) *term {
	t.Helper()
	client := fake.NewClientset(objs...)
	w, err := New(Config{Client: kubeclienttest.FromClientset(client), Views: store, Raft: raft, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tm := newTerm(w)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(tm.transform))
	tm.services = factory.Core().V1().Services().Informer()
	tm.slices = factory.Discovery().V1().EndpointSlices().Informer()
	factory.Start(t.Context().Done())
	t.Cleanup(factory.Shutdown)
	for typ, ok := range factory.WaitForCacheSync(t.Context().Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	tm.q = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[key](retryBaseDelay, retryMaxDelay))
	t.Cleanup(tm.q.ShutDown)
	return tm
}

// seededStore is a fresh store holding recs (*corev1.Service or
// *discoveryv1.EndpointSlice, translated) at index 1, and a fakeRaft
// committing into it.
func seededStore(t *testing.T, recs ...runtime.Object) (*fsm.Store, *fakeRaft) {
	t.Helper()
	store, err := fsm.Open(filepath.Join(t.TempDir(), "fsm.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	raft := &fakeRaft{store: store}
	var cmds []fsm.Command
	for _, o := range recs {
		switch o := o.(type) {
		case *corev1.Service:
			cmds = append(cmds, fsm.UpsertService(ServiceFrom(o)))
		case *discoveryv1.EndpointSlice:
			es, ok := SliceFrom(o)
			if !ok {
				t.Fatalf("seed slice %s carries no records", o.Name)
			}
			cmds = append(cmds, fsm.UpsertSlice(es))
		default:
			t.Fatalf("cannot seed a %T", o)
		}
	}
	if len(cmds) > 0 {
		if err := raft.Commit(context.Background(), cmds); err != nil {
			t.Fatal(err)
		}
	}
	return store, raft
}

func svcKey(ns, name string) key   { return key{kindService, ns, name} }
func sliceKey(ns, name string) key { return key{kindSlice, ns, name} }

// Objects of the pure tests: web in two versions, its slice in two
// versions, a slice without service label and one of address type FQDN.
func webService(ports ...corev1.ServicePort) *corev1.Service {
	s := clusterIPService("ns", "web", ports...)
	s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
	return s
}

func webSlice(ready bool, labels map[string]string, at discoveryv1.AddressType) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: labels},
		AddressType: at,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.244.0.5"},
			Conditions: discoveryv1.EndpointConditions{Ready: new(ready)},
		}},
	}
}

var webLabel = map[string]string{discoveryv1.LabelServiceName: "web"}

// TestDiff: for one key, diff commits what makes the View's record match the
// API's object, and nothing when they already match.
func TestDiff(t *testing.T) {
	web := webService(tcpPort("http", 80))
	webMore := webService(tcpPort("http", 80), tcpPort("https", 443))
	annotated := webService(tcpPort("http", 80))
	annotated.Annotations = map[string]string{"example.com/irrelevant": "yes"}
	slice := webSlice(true, webLabel, discoveryv1.AddressTypeIPv4)
	unready := webSlice(false, webLabel, discoveryv1.AddressTypeIPv4)
	unlabelled := webSlice(true, nil, discoveryv1.AddressTypeIPv4)
	fqdn := webSlice(true, webLabel, discoveryv1.AddressTypeFQDN)
	fqdn.Endpoints[0].Addresses = []string{"web.example.com"}
	elsewhere := clusterIPService("other", "web", tcpPort("http", 80))

	for _, tc := range []struct {
		name string
		view []runtime.Object // translated into the View
		api  []runtime.Object // what the informers cache
		key  key
		want string         // "op name", or "" for no command
		rec  runtime.Object // what an upsert must carry, translated
	}{
		{"new service", nil, []runtime.Object{web}, svcKey("ns", "web"), "upsert-service web", web},
		{"unchanged service", []runtime.Object{web}, []runtime.Object{web}, svcKey("ns", "web"), "", nil},
		{"changed service", []runtime.Object{web}, []runtime.Object{webMore}, svcKey("ns", "web"), "upsert-service web", webMore},
		{"change DNS does not see", []runtime.Object{web}, []runtime.Object{annotated}, svcKey("ns", "web"), "", nil},
		{"deleted service", []runtime.Object{web}, nil, svcKey("ns", "web"), "delete-service web", nil},
		{"service in neither", nil, nil, svcKey("ns", "web"), "", nil},
		{"same name in another namespace", []runtime.Object{web}, []runtime.Object{elsewhere}, svcKey("ns", "web"), "delete-service web", nil},
		{"new slice", nil, []runtime.Object{slice}, sliceKey("ns", "web-1"), "upsert-slice web-1", slice},
		{"unchanged slice", []runtime.Object{slice}, []runtime.Object{slice}, sliceKey("ns", "web-1"), "", nil},
		{"endpoint turns unready", []runtime.Object{slice}, []runtime.Object{unready}, sliceKey("ns", "web-1"), "upsert-slice web-1", unready},
		{"deleted slice", []runtime.Object{slice}, nil, sliceKey("ns", "web-1"), "delete-slice web-1", nil},
		{"slice loses its service label", []runtime.Object{slice}, []runtime.Object{unlabelled}, sliceKey("ns", "web-1"), "delete-slice web-1", nil},
		{"slice without service label", nil, []runtime.Object{unlabelled}, sliceKey("ns", "web-1"), "", nil},
		{"slice turns FQDN", []runtime.Object{slice}, []runtime.Object{fqdn}, sliceKey("ns", "web-1"), "delete-slice web-1", nil},
		{"service key, slice of that name", nil, []runtime.Object{slice}, svcKey("ns", "web-1"), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store, raft := seededStore(t, tc.view...)
			tm := pureTerm(t, store, raft, tc.api...)
			cmd, ok := tm.diff(store.View(), tc.key)
			got := ""
			if ok {
				got = cmdString(cmd)
			}
			if got != tc.want {
				t.Fatalf("diff(%v) = %q, want %q", tc.key, got, tc.want)
			}
			switch rec := tc.rec.(type) {
			case *corev1.Service:
				if want := ServiceFrom(rec); !cmd.Service.Equal(want) {
					t.Errorf("upserts %+v, want %+v", cmd.Service, want)
				}
			case *discoveryv1.EndpointSlice:
				if want, _ := SliceFrom(rec); !cmd.Slice.Equal(want) {
					t.Errorf("upserts %+v, want %+v", cmd.Slice, want)
				}
			}
		})
	}
}

// TestProcess: a batch is committed as one entry of the commands that
// differ; on a commit failure every key is requeued with backoff and State
// says so; when the term has ended the batch is dropped; and the term
// streams once its initial keys are committed.
func TestProcess(t *testing.T) {
	web := webService(tcpPort("http", 80))
	webMore := webService(tcpPort("http", 80), tcpPort("https", 443))
	slice := webSlice(true, webLabel, discoveryv1.AddressTypeIPv4)
	db := clusterIPService("ns", "db", tcpPort("pg", 5432))
	batch := []key{svcKey("ns", "web"), svcKey("ns", "db"), sliceKey("ns", "web-1")}

	for _, tc := range []struct {
		name      string
		api       []runtime.Object
		failNext  int  // Commit calls that fail
		ended     bool // the term's context is done
		initial   []key
		wantCmds  []string // committed, in batch order
		wantState string
		requeued  bool // every key of the batch is requeued once
	}{{
		name:      "one entry of what differs",
		api:       []runtime.Object{webMore, db},
		wantCmds:  []string{"upsert-service web", "delete-slice web-1"},
		wantState: "streaming",
	}, {
		name:      "nothing differs",
		api:       []runtime.Object{web, db, slice},
		wantState: "streaming",
	}, {
		name:      "initial keys outside the batch keep it syncing",
		api:       []runtime.Object{webMore, db, slice},
		initial:   append(slices.Clone(batch), svcKey("ns", "later")),
		wantCmds:  []string{"upsert-service web"},
		wantState: "syncing",
	}, {
		name:      "commit fails",
		api:       []runtime.Object{webMore, db},
		failNext:  1,
		wantState: "backoff: commit: injected commit failure",
		requeued:  true,
	}, {
		name:      "term ended during commit",
		api:       []runtime.Object{webMore, db},
		ended:     true,
		wantState: "syncing",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The View has web, db and web-1 as first seen.
			store, raft := seededStore(t, web, db, slice)
			m := raft.mark()
			raft.failNext = tc.failNext
			tm := pureTerm(t, store, raft, tc.api...)
			initial := tc.initial
			if initial == nil {
				initial = batch
			}
			tm.initial = map[key]struct{}{}
			for _, k := range initial {
				tm.initial[k] = struct{}{}
			}
			for _, k := range batch {
				tm.q.Add(k)
			}
			var got []key
			for range batch {
				k, _ := tm.q.Get()
				got = append(got, k)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.ended {
				cancel()
			}

			tm.process(ctx, got)

			cmds, entries := raft.since(m, "")
			if gotCmds := cmdStrings(cmds); !slices.Equal(gotCmds, tc.wantCmds) {
				t.Errorf("committed %q, want %q", gotCmds, tc.wantCmds)
			}
			if wantEntries := min(len(tc.wantCmds), 1); entries != wantEntries {
				t.Errorf("%d entries, want %d", entries, wantEntries)
			}
			if s := tm.state(); s != tc.wantState {
				t.Errorf("State = %q, want %q", s, tc.wantState)
			}
			for _, k := range batch {
				want := 0
				if tc.requeued {
					want = 1
				}
				if n := tm.q.NumRequeues(k); n != want {
					t.Errorf("%v requeued %d times, want %d", k, n, want)
				}
			}
			if !tc.requeued {
				if n := tm.q.Len(); n != 0 {
					t.Errorf("%d keys left in the queue", n)
				}
				return
			}
			// The requeued keys come back after their backoff, and with them
			// the same commands.
			var again []key
			for range batch {
				k, _ := tm.q.Get()
				again = append(again, k)
			}
			tm.process(ctx, again)
			cmds, _ = raft.since(m, "")
			if got, want := cmdStrings(cmds), []string{"upsert-service web", "delete-slice web-1"}; !slices.Equal(got, want) {
				t.Errorf("after the retry: committed %q, want %q", got, want)
			}
			if s := tm.state(); s != "streaming" {
				t.Errorf("State after the retry = %q, want streaming", s)
			}
		})
	}
}

// TestTombstone checks that a delete the informer only learned of by relist
// (cache.DeletedFinalStateUnknown) still queues the right key.
func TestTombstone(t *testing.T) {
	tm := &term{w: &Watcher{}, q: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[key]())}
	defer tm.q.ShutDown()
	tm.handler(kindSlice).OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: nil})
	tm.handler(kindService).OnDelete(&corev1.Service{ObjectMeta: meta("ns", "svc")})
	for _, want := range []key{{kindSlice, "ns", "gone"}, {kindService, "ns", "svc"}} {
		got, _ := tm.q.Get()
		if got != want {
			t.Fatalf("queued %v, want %v", got, want)
		}
		tm.q.Done(got)
	}
}

// staticView is a ViewSource that never changes.
type staticView struct{ v *fsm.View }

func (s staticView) View() *fsm.View { return s.v }

func TestNewDefaults(t *testing.T) {
	views := staticView{fsm.NewView(0, nil, nil)}
	client := kubeclienttest.FromClientset(fake.NewClientset())
	w, err := New(Config{Client: client, Views: views, Raft: &fakeRaft{}})
	if err != nil {
		t.Fatal(err)
	}
	if w.maxBatch != DefaultMaxBatch || w.State() != "idle" {
		t.Fatalf("defaults: %d %q", w.maxBatch, w.State())
	}
	var heard time.Duration
	w, err = New(Config{Client: client, Views: views, Raft: &fakeRaft{}, Committed: func(d time.Duration) { heard = d }})
	if err != nil {
		t.Fatal(err)
	}
	if w.committed == nil {
		t.Fatal("Config.Committed was not kept")
	}
	if w.committed(time.Second); heard != time.Second {
		t.Fatalf("Config.Committed heard %s", heard)
	}
	for _, bad := range []Config{
		{Views: views, Raft: &fakeRaft{}},
		{Client: client, Raft: &fakeRaft{}},
		{Client: client, Views: views},
		{Client: client, Views: views, Raft: &fakeRaft{}, MaxBatch: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

// TestNextHoldoff: after a term that worked (or was no restart) the next
// restart may come at once; a restart whose term never synced (the probe's
// list of one succeeds, full lists fail) doubles the holdoff from a second
// to the cap.
func TestNextHoldoff(t *testing.T) {
	for _, tc := range []struct {
		name          string
		prev          time.Duration
		failedRestart bool
		want          time.Duration
	}{
		{"restart that synced", 8 * time.Second, false, 0},
		{"first failed restart", 0, true, time.Second},
		{"doubles", 4 * time.Second, true, 8 * time.Second},
		{"capped", 20 * time.Second, true, apiRestartMaxHoldoff},
		{"stays at the cap", apiRestartMaxHoldoff, true, apiRestartMaxHoldoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextHoldoff(tc.prev, tc.failedRestart); got != tc.want {
				t.Errorf("nextHoldoff(%v, %v) = %v, want %v", tc.prev, tc.failedRestart, got, tc.want)
			}
		})
	}
}

// TestBacklogIsQueuedTwoBatchesAtATime: the keys of the initial diff reach
// the workqueue at most two batches at a time (the queue's set of keys
// keeps the room it grew to), and every key of the API and of the View is
// queued once, the format key last.
func TestBacklogIsQueuedTwoBatchesAtATime(t *testing.T) {
	var api []runtime.Object
	for i := range 25 {
		api = append(api, clusterIPService("ns", fmt.Sprintf("svc-%d", i), tcpPort("http", 80)))
	}
	// The View holds svc-0 (also in the API) and gone (only in the View).
	store, raft := seededStore(t, api[0], clusterIPService("ns", "gone", tcpPort("http", 80)))
	tm := pureTerm(t, store, raft, api...)
	tm.w.maxBatch = 4
	tm.enqueueAll(tm.services.GetStore(), tm.slices.GetStore())
	var order []key
	for tm.q.Len() > 0 {
		if l := tm.q.Len(); l > 2*tm.w.maxBatch {
			t.Fatalf("%d keys queued at once, want at most %d", l, 2*tm.w.maxBatch)
		}
		for range min(tm.w.maxBatch, tm.q.Len()) {
			k, _ := tm.q.Get()
			order = append(order, k)
			tm.q.Done(k)
		}
		tm.queueBacklog()
	}
	want := map[key]bool{{kind: kindService, namespace: "ns", name: "gone"}: true}
	for i := range 25 {
		want[key{kind: kindService, namespace: "ns", name: fmt.Sprintf("svc-%d", i)}] = true
	}
	if len(order) != len(want)+1 || order[len(order)-1] != (key{kind: kindFormat}) {
		t.Fatalf("queued %d keys, want %d and the format key last: %v", len(order), len(want)+1, order)
	}
	for _, k := range order[:len(order)-1] {
		if !want[k] {
			t.Errorf("queued %v twice or unasked", k)
		}
		delete(want, k)
	}
}

// TestHandlerQueuesNoObjectOfTheInitialList: the initial diff queues those
// keys, two batches at a time (above); the informers' events after their
// initial list are queued as they come.
func TestHandlerQueuesNoObjectOfTheInitialList(t *testing.T) {
	store, raft := seededStore(t)
	tm := pureTerm(t, store, raft)
	h := tm.handler(kindService)
	listed, added := clusterIPService("ns", "listed", tcpPort("http", 80)), clusterIPService("ns", "added", tcpPort("http", 80))
	h.OnAdd(listed, true)
	if n := tm.q.Len(); n != 0 {
		t.Fatalf("%d keys queued for an object of the initial list, want 0", n)
	}
	h.OnAdd(added, false)
	h.OnUpdate(listed, listed)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: clusterIPService("ns", "gone", tcpPort("http", 80))})
	var got []key
	for tm.q.Len() > 0 {
		k, _ := tm.q.Get()
		got = append(got, k)
		tm.q.Done(k)
	}
	want := []key{svcKey("ns", "added"), svcKey("ns", "listed"), svcKey("ns", "gone")}
	if !slices.Equal(got, want) {
		t.Fatalf("queued %v, want %v", got, want)
	}
}
