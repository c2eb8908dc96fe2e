package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// The tests that need an API server share one etcd + kube-apiserver
// (testenv.Get); the pure ones (term_test.go, translate_test.go) start none.
func TestMain(m *testing.M) { testenv.Main(m) }

const (
	waitTimeout = 60 * time.Second
	// stopBound is how long Run may take to return once its context is
	// cancelled before the test calls it hung. Run itself waits at most
	// stopGrace for the informers; the rest is headroom for a loaded
	// machine, so that only a hang fails, never slowness.
	stopBound = stopGrace + 30*time.Second
)

// fakeRaft is a Committer that applies each batch as one log entry to a real
// fsm.Store, as a single-node Raft would, and records what it was given.
type fakeRaft struct {
	store *fsm.Store
	w     *Watcher // for recording State at each Commit

	mu            sync.Mutex
	index         uint64
	commits       int           // successful Commit calls (log entries)
	failures      int           // Commit calls that failed on purpose
	log           []fsm.Command // every committed command, in order
	batchSizes    []int
	states        []string // w.State() at the start of each Commit call
	barrierStates []string // w.State() at the start of each Barrier call
	failNext      int      // fail this many Commit calls
	barrierErrs   int      // fail this many Barrier calls
	blockBarier   bool     // Barrier blocks until ctx is done
	blockCommit   bool     // Commit blocks until ctx is done
}

func (r *fakeRaft) Barrier(ctx context.Context) error {
	var state string
	if r.w != nil {
		state = r.w.State()
	}
	r.mu.Lock()
	r.barrierStates = append(r.barrierStates, state)
	block := r.blockBarier
	fail := r.barrierErrs > 0
	if fail {
		r.barrierErrs--
	}
	r.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail {
		return errors.New("injected barrier failure")
	}
	return ctx.Err()
}

func (r *fakeRaft) Commit(ctx context.Context, cmds []fsm.Command) error {
	var state string
	if r.w != nil {
		state = r.w.State()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, state)
	if r.blockCommit {
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		return fmt.Errorf("leadership lost: %w", ctx.Err())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.failNext > 0 {
		r.failNext--
		r.failures++
		return errors.New("injected commit failure")
	}
	data, err := fsm.Encode(cmds)
	if err != nil {
		return err
	}
	if err := r.store.ApplyEntries([]fsm.Entry{{Index: r.index + 1, Data: data}}); err != nil {
		return err
	}
	r.index++
	r.commits++
	r.log = append(r.log, cmds...)
	r.batchSizes = append(r.batchSizes, len(cmds))
	return nil
}

// mark is a point in the fake log.
type mark struct{ commits, cmds, failures int }

func (r *fakeRaft) mark() mark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return mark{r.commits, len(r.log), r.failures}
}

// since returns the commands committed since m, only those of namespace ns
// unless ns is "", and how many entries carried them.
func (r *fakeRaft) since(m mark, ns string) (cmds []fsm.Command, entries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.log[m.cmds:] {
		if ns == "" || cmdNamespace(c) == ns {
			cmds = append(cmds, c)
		}
	}
	return cmds, r.commits - m.commits
}

func cmdNamespace(c fsm.Command) string {
	switch {
	case c.Service != nil:
		return c.Service.Namespace
	case c.Slice != nil:
		return c.Slice.Namespace
	}
	return c.Namespace
}

func cmdString(c fsm.Command) string {
	switch {
	case c.Service != nil:
		return c.Op.String() + " " + c.Service.Name
	case c.Slice != nil:
		return c.Op.String() + " " + c.Slice.Name
	}
	return c.Op.String() + " " + c.Name
}

func cmdStrings(cmds []fsm.Command) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = cmdString(c)
	}
	return out
}

// harness is a watcher on the least-privilege kdnsd identity, committing
// into a fresh store.
type harness struct {
	t     *testing.T
	store *fsm.Store
	raft  *fakeRaft
	w     *Watcher
	admin kubernetes.Interface
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newHarness(t *testing.T, cfg *rest.Config, options ...func(*Config)) *harness {
	t.Helper()
	store, err := fsm.Open(filepath.Join(t.TempDir(), "fsm.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if cfg == nil {
		cfg = testenv.Get(t).KdnsdConfig()
	}
	client, reach, err := kubeclient.NewTracked(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raft := &fakeRaft{store: store}
	wcfg := Config{Client: client, Reachability: reach, Views: store, Raft: raft, Logger: testLogger(t)}
	for _, o := range options {
		o(&wcfg)
	}
	w, err := New(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	raft.w = w
	return &harness{t: t, store: store, raft: raft, w: w, admin: adminClient(t)}
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(testenv.Get(t).AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs one term. The returned stop cancels it and fails the test
// unless Run returns within stopBound; it reports how long that took. The
// term is stopped at cleanup if the test did not stop it.
func (h *harness) start() (stop func() time.Duration) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			began := time.Now()
			cancel()
			select {
			case err := <-done:
				took = time.Since(began)
				if err != nil {
					h.t.Errorf("Run returned %v", err)
				}
			case <-time.After(stopBound):
				h.t.Fatalf("Run did not return within %v of cancel (state %q)", stopBound, h.w.State())
			}
			if s := h.w.State(); s != "idle" {
				h.t.Errorf("State after Run = %q, want idle", s)
			}
		})
		return took
	}
	h.t.Cleanup(func() { stop() })
	return stop
}

// waitState waits until State satisfies ok.
func (h *harness) waitState(what string, ok func(string) bool) {
	h.t.Helper()
	if !wait.Poll(waitTimeout, func() bool { return ok(h.w.State()) }) {
		h.t.Fatalf("timed out waiting for state %s; state %q", what, h.w.State())
	}
}

func (h *harness) waitStreaming() {
	h.t.Helper()
	h.waitState("streaming", func(s string) bool { return s == "streaming" })
}

// waitView waits until the store's View satisfies ok.
func (h *harness) waitView(what string, ok func(*fsm.View) bool) {
	h.t.Helper()
	ch, cancel := h.store.Subscribe()
	defer cancel()
	timeout := time.After(waitTimeout)
	for !ok(h.store.View()) {
		select {
		case <-ch:
		case <-timeout:
			h.t.Fatalf("timed out waiting for the view to show %s (state %q)", what, h.w.State())
		}
	}
}

// expectCmds checks that exactly want (as "op name", in any order) were
// committed for namespace ns since m.
func (h *harness) expectCmds(m mark, ns string, want ...string) []fsm.Command {
	h.t.Helper()
	cmds, _ := h.raft.since(m, ns)
	got := cmdStrings(cmds)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		h.t.Fatalf("commands for %s since mark:\n got %q\nwant %q", ns, got, want)
	}
	return cmds
}

// createNamespace creates a namespace named prefix-<random>, so that tests
// can run repeatedly (-count) against the same API server.
func createNamespace(t *testing.T, c kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func clusterIPService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: ports,
		},
	}
}

func tcpPort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port)}
}

func (h *harness) svcInView(ns, name string) func(*fsm.View) bool {
	return func(v *fsm.View) bool { return v.Service(fsm.ServiceKey{Namespace: ns, Name: name}) != nil }
}

// viewMatchesService reports whether the View holds exactly what svc
// translates to.
func viewMatchesService(svc *corev1.Service) func(*fsm.View) bool {
	want := ServiceFrom(svc)
	return func(v *fsm.View) bool {
		got := v.Service(want.Key())
		return got != nil && got.Equal(want)
	}
}

func viewMatchesSlice(es *discoveryv1.EndpointSlice) func(*fsm.View) bool {
	want, _ := SliceFrom(es)
	return func(v *fsm.View) bool {
		got := v.Slice(want.Key())
		return got != nil && got.Equal(want)
	}
}

// TestStreaming drives creates, updates and deletes of services and
// endpoint slices through the real API server and checks that each shows up
// as exactly the right command.
func TestStreaming(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "stream")
	svcs := h.admin.CoreV1().Services(ns)
	eps := h.admin.DiscoveryV1().EndpointSlices(ns)
	stop := h.start()
	h.waitStreaming()

	// Create a dual-stack ClusterIP service.
	m := h.raft.mark()
	web := clusterIPService(ns, "web", tcpPort("http", 80))
	web.Spec.IPFamilyPolicy = new(corev1.IPFamilyPolicyRequireDualStack)
	web, err := svcs.Create(ctx, web, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.waitView("service web", viewMatchesService(web))
	h.expectCmds(m, ns, "upsert-service web")
	if got := h.store.View().Service(fsm.ServiceKey{Namespace: ns, Name: "web"}); len(got.ClusterIPs) != 2 {
		t.Fatalf("dual-stack service has ClusterIPs %v", got.ClusterIPs)
	}

	// Update what DNS cares about.
	m = h.raft.mark()
	web.Spec.Ports = append(web.Spec.Ports, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53})
	web.Spec.PublishNotReadyAddresses = true
	if web, err = svcs.Update(ctx, web, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("updated service web", viewMatchesService(web))
	h.expectCmds(m, ns, "upsert-service web")

	// A change DNS does not care about commits nothing: an annotation, and a
	// slice without service-name label. A marker service afterwards shows
	// when the watcher has seen them.
	m = h.raft.mark()
	web.Annotations = map[string]string{"example.com/irrelevant": "yes"}
	if web, err = svcs.Update(ctx, web, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	orphan := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "orphan"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.99"}}},
	}
	if _, err := eps.Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	marker, err := svcs.Create(ctx, clusterIPService(ns, "marker", tcpPort("m", 1)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.waitView("service marker", viewMatchesService(marker))
	h.expectCmds(m, ns, "upsert-service marker")

	// Headless and ExternalName services.
	m = h.raft.mark()
	db := clusterIPService(ns, "db", tcpPort("pg", 5432))
	db.Spec.ClusterIP = corev1.ClusterIPNone
	if db, err = svcs.Create(ctx, db, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
	if ext, err = svcs.Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("services db and ext", func(v *fsm.View) bool {
		return viewMatchesService(db)(v) && viewMatchesService(ext)(v)
	})
	h.expectCmds(m, ns, "upsert-service db", "upsert-service ext")
	v := h.store.View()
	if got := v.Service(fsm.ServiceKey{Namespace: ns, Name: "db"}); !got.Headless || len(got.ClusterIPs) != 0 {
		t.Fatalf("headless service db = %+v", got)
	}
	if got := v.Service(fsm.ServiceKey{Namespace: ns, Name: "ext"}); got.ExternalName != "db.example.com" || got.Type != fsm.TypeExternalName {
		t.Fatalf("ExternalName service ext = %+v", got)
	}

	// An endpoint slice of web.
	m = h.raft.mark()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(8080))}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.244.0.5"},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
			Hostname:   new("web-0"),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-0"},
			NodeName:   new("node-a"),
		}, {
			Addresses: []string{"10.244.0.6"},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
		}},
	}
	if slice, err = eps.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("slice web-1", viewMatchesSlice(slice))
	h.expectCmds(m, ns, "upsert-slice web-1")
	if got := h.store.View().SlicesOf(fsm.ServiceKey{Namespace: ns, Name: "web"}); len(got) != 1 || got[0].Name != "web-1" {
		t.Fatalf("SlicesOf(web) = %v", got)
	}

	// An endpoint turns unready.
	m = h.raft.mark()
	slice.Endpoints[1].Conditions.Ready = new(false)
	if slice, err = eps.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("unready endpoint", viewMatchesSlice(slice))
	h.expectCmds(m, ns, "upsert-slice web-1")

	// The slice moves to another service.
	m = h.raft.mark()
	slice.Labels[discoveryv1.LabelServiceName] = "db"
	if slice, err = eps.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("slice web-1 of db", viewMatchesSlice(slice))
	h.expectCmds(m, ns, "upsert-slice web-1")
	v = h.store.View()
	if len(v.SlicesOf(fsm.ServiceKey{Namespace: ns, Name: "web"})) != 0 || len(v.SlicesOf(fsm.ServiceKey{Namespace: ns, Name: "db"})) != 1 {
		t.Fatalf("slice did not move from web to db")
	}

	// The slice loses its label: it no longer carries records.
	m = h.raft.mark()
	delete(slice.Labels, discoveryv1.LabelServiceName)
	if _, err = eps.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("unlabelled slice gone", func(v *fsm.View) bool {
		return v.Slice(fsm.SliceKey{Namespace: ns, Name: "web-1"}) == nil
	})
	h.expectCmds(m, ns, "delete-slice web-1")

	// Create and delete a slice.
	m = h.raft.mark()
	db2 := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-2", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv6,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd00:244::7"}, Hostname: new("db-0")}},
	}
	if db2, err = eps.Create(ctx, db2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("slice db-2", viewMatchesSlice(db2))
	if err := eps.Delete(ctx, "db-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("slice db-2 deleted", func(v *fsm.View) bool {
		return v.Slice(fsm.SliceKey{Namespace: ns, Name: "db-2"}) == nil
	})
	h.expectCmds(m, ns, "upsert-slice db-2", "delete-slice db-2")

	// Delete a service.
	m = h.raft.mark()
	if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("service web deleted", func(v *fsm.View) bool { return !h.svcInView(ns, "web")(v) })
	h.expectCmds(m, ns, "delete-service web")

	t.Logf("Run returned %v after cancel", stop())
}

// TestResyncCommitsOnlyDifference restarts Run over the same store: an
// unchanged cluster commits nothing, and changes made while no term ran
// (including a deletion) commit exactly those. The services fill more than
// two list pages, so a page lost or repeated would show as commands.
func TestResyncCommitsOnlyDifference(t *testing.T) {
	const n = 250
	h := newHarness(t, nil, func(c *Config) { c.ListPageSize = 100 })
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "resync")
	svcs := h.admin.CoreV1().Services(ns)
	began := time.Now()
	parallel(t, n, func(i int) error {
		_, err := svcs.Create(ctx, clusterIPService(ns, fmt.Sprintf("svc-%03d", i), tcpPort("p", 80)), metav1.CreateOptions{})
		return err
	})
	t.Logf("created %d services in %v", n, time.Since(began))

	countNS := func(v *fsm.View) int {
		c := 0
		for s := range v.Services() {
			if s.Namespace == ns {
				c++
			}
		}
		return c
	}

	// First term: a fresh store gets everything.
	stop := h.start()
	h.waitStreaming()
	if c := countNS(h.store.View()); c != n {
		t.Fatalf("after the first sync the view has %d services of %s, want %d", c, ns, n)
	}
	stop()

	// Second term, nothing changed: nothing to commit.
	m := h.raft.mark()
	stop = h.start()
	h.waitStreaming()
	stop()
	if cmds, entries := h.raft.since(m, ""); len(cmds) != 0 || entries != 0 {
		t.Fatalf("resync of an unchanged cluster committed %d commands in %d entries: %q", len(cmds), entries, cmdStrings(cmds))
	}

	// Change three services while no term runs.
	s0, err := svcs.Get(ctx, "svc-000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s0.Spec.Ports = append(s0.Spec.Ports, tcpPort("q", 81))
	if _, err := svcs.Update(ctx, s0, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := svcs.Delete(ctx, "svc-001", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, clusterIPService(ns, "svc-new", tcpPort("p", 80)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	m = h.raft.mark()
	stop = h.start()
	h.waitStreaming()
	stop()
	cmds, entries := h.raft.since(m, "")
	t.Logf("resync after 3 changes: %q in %d entries", cmdStrings(cmds), entries)
	h.expectCmds(m, "", "upsert-service svc-000", "delete-service svc-001", "upsert-service svc-new")
	if c := countNS(h.store.View()); c != n {
		t.Fatalf("the view has %d services of %s, want %d", c, ns, n)
	}
}

// TestBurst creates 1,000 services as fast as the API server takes them and
// checks that each is committed exactly once; it logs how many entries they
// took.
func TestBurst(t *testing.T) {
	const n = 1000
	h := newHarness(t, nil)
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "burst")
	svcs := h.admin.CoreV1().Services(ns)
	h.start()
	h.waitStreaming()

	m := h.raft.mark()
	began := time.Now()
	parallel(t, n, func(i int) error {
		_, err := svcs.Create(ctx, clusterIPService(ns, fmt.Sprintf("b-%04d", i), tcpPort("p", 80)), metav1.CreateOptions{})
		return err
	})
	created := time.Since(began)
	h.waitView(fmt.Sprintf("%d services", n), func(v *fsm.View) bool {
		c := 0
		for s := range v.Services() {
			if s.Namespace == ns {
				c++
			}
		}
		return c == n
	})
	all := time.Since(began)
	cmds, entries := h.raft.since(m, ns)
	h.raft.mu.Lock()
	sizes := slices.Clone(h.raft.batchSizes[m.commits:])
	h.raft.mu.Unlock()
	t.Logf("%d services created in %v, all in the view after %v; %d commands in %d entries, sizes %v",
		n, created.Round(time.Millisecond), all.Round(time.Millisecond), len(cmds), entries, sizes)
	if len(cmds) != n {
		t.Fatalf("%d commands for %d creations", len(cmds), n)
	}
	// How many entries the burst takes depends on how fast the machine
	// creates them, so it is reported, not asserted.
}

// overlappingRaft holds the first Commit after arm until a second Commit
// call begins, or until the first's context ends: it tells whether the
// watcher appends a batch while another is in flight.
type overlappingRaft struct {
	*fakeRaft
	armed  atomic.Bool
	calls  atomic.Int32
	held   chan struct{} // closed when the first Commit is held
	second chan struct{} // closed when the second Commit begins
}

func (r *overlappingRaft) Commit(ctx context.Context, cmds []fsm.Command) error {
	if r.armed.Load() {
		switch r.calls.Add(1) {
		case 1:
			close(r.held)
			select {
			case <-r.second:
			case <-ctx.Done():
			}
		case 2:
			close(r.second)
		}
	}
	return r.fakeRaft.Commit(ctx, cmds)
}

// TestChangeDuringCommitIsAppendedAtOnce: a change that comes while a
// commit is in flight is committed beside it, not after it (the
// EndpointSlice that follows its Service's creation by milliseconds).
func TestChangeDuringCommitIsAppendedAtOnce(t *testing.T) {
	var raft *overlappingRaft
	h := newHarness(t, nil, func(c *Config) {
		raft = &overlappingRaft{fakeRaft: c.Raft.(*fakeRaft), held: make(chan struct{}), second: make(chan struct{})}
		c.Raft = raft
	})
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "overlap")
	svcs := h.admin.CoreV1().Services(ns)
	h.start()
	h.waitStreaming()

	m := h.raft.mark()
	raft.armed.Store(true)
	first, err := svcs.Create(ctx, clusterIPService(ns, "first", tcpPort("p", 80)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-raft.held:
	case <-time.After(waitTimeout):
		t.Fatal("the first service's change was never committed")
	}
	second, err := svcs.Create(ctx, clusterIPService(ns, "second", tcpPort("p", 80)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-raft.second:
	case <-time.After(waitTimeout):
		t.Fatalf("the second service's change waited for the first's commit to end (state %q)", h.w.State())
	}
	h.waitView("both services", func(v *fsm.View) bool {
		return viewMatchesService(first)(v) && viewMatchesService(second)(v)
	})
	h.expectCmds(m, ns, "upsert-service first", "upsert-service second")
}

// TestCommitAndBarrierRetry injects barrier and commit failures: the term
// retries with backoff, State says so, and every change lands exactly once.
func TestCommitAndBarrierRetry(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "retry")
	h.raft.barrierErrs = 2
	h.raft.failNext = 1 // the initial sync's first entry
	h.start()
	h.waitStreaming()
	// State as each Barrier call began: syncing, then twice the failure
	// of the call before.
	h.raft.mu.Lock()
	states := slices.Clone(h.raft.barrierStates)
	h.raft.mu.Unlock()
	const failed = "backoff: raft barrier: injected barrier failure"
	if want := []string{"syncing", failed, failed}; !slices.Equal(states, want) {
		t.Errorf("State at each Barrier call = %q, want %q", states, want)
	}

	m := h.raft.mark()
	h.raft.mu.Lock()
	h.raft.failNext = 3
	h.raft.mu.Unlock()
	flaky, err := h.admin.CoreV1().Services(ns).Create(ctx, clusterIPService(ns, "flaky", tcpPort("p", 80)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.waitView("service flaky", viewMatchesService(flaky))
	h.expectCmds(m, ns, "upsert-service flaky")
	h.raft.mu.Lock()
	failures := h.raft.failures - m.failures
	retryStates := slices.Clone(h.raft.states[len(h.raft.states)-3:])
	h.raft.mu.Unlock()
	if failures != 3 {
		t.Fatalf("%d injected failures, want 3", failures)
	}
	for _, s := range retryStates {
		if s != "backoff: commit: injected commit failure" {
			t.Fatalf("State at the retries = %q", retryStates)
		}
	}
	h.waitStreaming() // a successful commit clears the backoff
}

// TestStop checks that Run returns promptly on cancel wherever it is.
func TestStop(t *testing.T) {
	t.Run("streaming", func(t *testing.T) {
		h := newHarness(t, nil)
		stop := h.start()
		h.waitStreaming()
		t.Logf("returned %v after cancel", stop())
	})

	t.Run("API server refuses connections", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg := testenv.Get(t).KdnsdConfig()
		cfg.Host = "https://" + addr
		h := newHarness(t, cfg)
		stop := h.start()
		h.waitState("backoff for the API server", func(s string) bool {
			return strings.HasPrefix(s, "backoff: list/watch") && strings.Contains(s, "connection refused")
		})
		t.Logf("state: %q", h.w.State())
		t.Logf("returned %v after cancel", stop())
		if i := h.store.View().Index(); i != 0 {
			t.Fatalf("something was committed: index %d", i)
		}
	})

	t.Run("API server hangs", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 16)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c // hold it open, never answer
			}
		}()
		defer func() {
			for len(accepted) > 0 {
				(<-accepted).Close()
			}
		}()
		cfg := testenv.Get(t).KdnsdConfig()
		cfg.Host = "https://" + l.Addr().String()
		h := newHarness(t, cfg)
		stop := h.start()
		var c net.Conn
		select {
		case c = <-accepted:
		case <-time.After(waitTimeout):
			t.Fatal("the watcher never connected")
		}
		accepted <- c
		if s := h.w.State(); s != "syncing" {
			t.Errorf("state while the API server hangs = %q", s)
		}
		t.Logf("returned %v after cancel", stop())
	})

	t.Run("barrier blocks", func(t *testing.T) {
		h := newHarness(t, nil)
		h.raft.blockBarier = true
		stop := h.start()
		h.waitState("syncing", func(s string) bool { return s == "syncing" })
		t.Logf("returned %v after cancel", stop())
	})

	t.Run("commit blocks until leadership is lost", func(t *testing.T) {
		h := newHarness(t, nil)
		h.raft.blockCommit = true
		stop := h.start()
		// A fresh store: the initial diff has commands, so the worker is
		// inside Commit once states holds an entry.
		wait.For(t, "a Commit call", waitTimeout, func() bool {
			h.raft.mu.Lock()
			defer h.raft.mu.Unlock()
			return len(h.raft.states) > 0
		})
		t.Logf("returned %v after cancel", stop())
		if i := h.store.View().Index(); i != 0 {
			t.Fatalf("something was committed: index %d", i)
		}
	})
}

// proxy forwards loopback TCP connections to the API server and can cut
// them off, to simulate an API server outage.
type proxy struct {
	t      *testing.T
	addr   string // 127.0.0.1:port, stable across outages
	target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *proxy) forward(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.l == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	copyClose := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go copyClose(u, c)
	go copyClose(c, u)
}

// down closes the listener (new connections are refused) and every open
// connection.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up listens again on the same address.
func (p *proxy) up() {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(l)
}

// TestAPIServerOutage cuts the watcher off the API server in mid-term: State
// reports the backoff, a change made meanwhile lands once the API server is
// back, and State returns to streaming.
func TestAPIServerOutage(t *testing.T) {
	env := testenv.Get(t)
	p := newProxy(t, strings.TrimPrefix(env.Host, "https://"))
	cfg := env.KdnsdConfig()
	cfg.Host = "https://" + p.addr
	h := newHarness(t, cfg)
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "outage")
	svcs := h.admin.CoreV1().Services(ns)
	h.start()
	h.waitStreaming()

	p.down()
	h.waitState("backoff for the API server", func(s string) bool { return strings.HasPrefix(s, "backoff: list/watch") })
	t.Logf("state during the outage: %q", h.w.State())
	m := h.raft.mark()
	during, err := svcs.Create(ctx, clusterIPService(ns, "during", tcpPort("p", 80)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	p.up()
	h.waitView("service created during the outage", viewMatchesService(during))
	h.waitStreaming()
	t.Logf("caught up and streaming %v after the API server came back", time.Since(began).Round(time.Millisecond))
	h.expectCmds(m, ns, "upsert-service during")
}

// parallel runs f(0..n-1) on 16 goroutines and fails the test on any error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestAPIServerRestart stops the real kube-apiserver in mid-term for long
// enough that client-go's list/watch backoff grows to seconds, and starts it
// again: the outage shows in State, and a Service created after the restart
// is committed. Killed, the API server breaks its watches and the informers
// report the failures; shut down (SIGTERM), it closes them cleanly and the
// informers retry the refused watches in silence, so that only the
// client's failed requests (Config.Reachability) tell. How long the commit
// took after the API server was ready is logged, not asserted
// (term.probeAPI aims at about apiProbeInterval; a slow machine takes
// longer).
func TestAPIServerRestart(t *testing.T) {
	env := testenv.Get(t)
	for _, tc := range []struct {
		name string
		stop func() error
	}{
		{"killed", env.StopAPIServer},
		{"shut down", env.ShutDownAPIServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ctx := context.Background()
			ns := createNamespace(t, h.admin, "restart")
			h.start()
			h.waitStreaming()

			if err := tc.stop(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				// A no-op unless the test failed while the API server was down.
				if err := env.StartAPIServer(context.Background()); err != nil {
					t.Errorf("restart API server: %v", err)
				}
			})
			h.waitState("backoff for the API server", func(s string) bool { return strings.HasPrefix(s, "backoff: ") })
			// The outage itself: the reflectors' retries back off meanwhile
			// (0.8 s doubling), so that after it their next try would be
			// seconds away.
			time.Sleep(10 * time.Second)
			if err := env.StartAPIServer(ctx); err != nil {
				t.Fatal(err)
			}
			ready := time.Now()
			m := h.raft.mark()
			after, err := h.admin.CoreV1().Services(ns).Create(ctx, clusterIPService(ns, "after", tcpPort("p", 80)), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h.waitView("service created after the restart", viewMatchesService(after))
			t.Logf("service created after the restart committed %v after the API server was ready", time.Since(ready).Round(time.Millisecond))
			h.waitStreaming()
			h.expectCmds(m, ns, "upsert-service after")
		})
	}
}

// TestCommittedLatency: Config.Committed hears of a change an event
// reported once it is committed. (The watcher sees every namespace of the
// shared API server, where other tests' objects come and go, so only what
// this test's change must cause is asserted.)
func TestCommittedLatency(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ns := createNamespace(t, h.admin, "latency")
	svcs := h.admin.CoreV1().Services(ns)
	var mu sync.Mutex
	var waited []time.Duration
	h.w.committed = func(d time.Duration) {
		mu.Lock()
		waited = append(waited, d)
		mu.Unlock()
	}
	observed := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(waited)
	}
	h.start()
	h.waitStreaming()
	before := len(observed())
	if _, err := svcs.Create(ctx, clusterIPService(ns, "new", tcpPort("p", 80)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitView("the new service", func(v *fsm.View) bool { return v.Service(fsm.ServiceKey{Namespace: ns, Name: "new"}) != nil })
	wait.For(t, "the new service's commit to be observed", 30*time.Second, func() bool { return len(observed()) > before })
	for _, d := range observed()[before:] {
		if d <= 0 {
			t.Fatalf("observed %s", d)
		}
	}
}
