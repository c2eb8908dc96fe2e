package watcher

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kdnsd/kdnsd/fsm"

	"github.com/kdnsd/kdnsd/internal/kubeclient"
)

// kind says which record a queue key names.
type kind uint8

const (
	kindService kind = iota + 1
	kindSlice
	kindNamespace
	kindPod
	// kindFormat is no object: the command format Raft commits in has
	// changed, and with it whether namespaces and pods are replicated.
	kindFormat
)

// formatPollInterval is how often a term looks whether the command format
// changed (membership decides it in rounds of its own).
const formatPollInterval = 500 * time.Millisecond

// key is one work queue item: a service or an endpoint slice, by name. The
// worker looks the object up when it processes the key, so a key stands for
// "whatever this object is now", and repeated events coalesce.
type key struct {
	kind      kind
	namespace string
	name      string
}

func (k key) String() string {
	switch k.kind {
	case kindService:
		return "service " + k.namespace + "/" + k.name
	case kindNamespace:
		return "namespace " + k.name
	case kindPod:
		return "pod " + k.namespace + "/" + k.name
	case kindFormat:
		return "command format"
	}
	return "endpointslice " + k.namespace + "/" + k.name
}

// apiError is the last list/watch failure of one informer.
type apiError struct {
	err error
	at  time.Time
	// r and rv tell whether the informer has made progress since: its
	// last synced resource version changes on every successful list and
	// watch event (and bookmark).
	r  *cache.Reflector
	rv string
}

// term is one run of the watcher: one leadership term.
type term struct {
	w   *Watcher
	log *slog.Logger
	q   workqueue.TypedRateLimitingInterface[key]

	// The informers' stores hold cached entries (see transform).
	services   cache.SharedIndexInformer
	slices     cache.SharedIndexInformer
	namespaces cache.SharedIndexInformer
	pods       cache.SharedIndexInformer // nil without Config.WatchPods

	mu         sync.Mutex
	phase      string // "syncing" or "streaming"
	barrierErr error
	commitErr  error
	apiErrs    map[string]*apiError // by resource name
	// outage is set by probeAPI when the client's requests have failed for
	// apiUnreachableGrace, until the term ends (see probeAPI); its r is nil.
	outage *apiError

	// seen holds, for each key an informer reported after its initial
	// list and not yet committed, when the first such event arrived (see
	// Config.Committed).
	seenMu sync.Mutex
	seen   map[key]time.Time

	// apiBack is set when probeAPI ended the term because the API server
	// answers again while informers were held up: Run starts a new term.
	apiBack atomic.Bool
	// holdoff is how long after its start probeAPI may not end the term
	// (set by Run, see nextHoldoff); synced is set once the informers'
	// caches have synced (read by Run after run returns).
	holdoff time.Duration
	synced  bool

	// commands and entries count what this term committed; batches in
	// flight beside each other add to them.
	commands atomic.Int64
	entries  atomic.Int64

	// Owned by the worker.
	started time.Time
	// initial holds the keys of the initial diff not yet committed (or
	// found equal): the term is "syncing" until it is empty.
	initial map[key]struct{}
	// replicating: namespaces and pods are replicated now (the command
	// format carries them). pending holds the namespace and pod keys of the
	// diff that started then, not yet committed (or found equal); once it
	// is empty the View's Tracked says so.
	replicating bool
	pending     map[key]struct{}
	// backlog holds keys of those two diffs not yet queued (see
	// queueBacklog).
	backlog []key
}

func newTerm(w *Watcher) *term {
	return &term{
		w:       w,
		log:     w.log,
		phase:   "syncing",
		apiErrs: map[string]*apiError{},
		seen:    map[key]time.Time{},
		started: time.Now(),
	}
}

func (t *term) state() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.commitErr != nil {
		return "backoff: commit: " + t.commitErr.Error()
	}
	if t.barrierErr != nil {
		return "backoff: raft barrier: " + t.barrierErr.Error()
	}
	if held := t.heldUpLocked(); len(held) > 0 {
		return fmt.Sprintf("backoff: list/watch %s: %v", held[0], t.apiErrs[held[0]].err)
	}
	if t.outage != nil {
		return fmt.Sprintf("backoff: API server unreachable since %s: %v", t.outage.at.Format(time.RFC3339), t.outage.err)
	}
	return t.phase
}

// unreachable returns since when every request of the watcher's client
// has failed, if that is longer than apiUnreachableGrace, and the last
// failure; a zero time otherwise or when the client is not tracked.
func (t *term) unreachable() (time.Time, error) {
	if t.w.reach == nil {
		return time.Time{}, nil
	}
	since, err := t.w.reach.Unreachable()
	if since.IsZero() || time.Since(since) < apiUnreachableGrace {
		return time.Time{}, nil
	}
	return since, err
}

// heldUpLocked returns the resources, in a fixed order, whose last list or
// watch failed less than apiErrorTTL ago and whose informer has made no
// progress since. t.mu must be held.
func (t *term) heldUpLocked() []string {
	var held []string
	for _, name := range []string{"services", "endpointslices", "namespaces", "pods"} {
		e := t.apiErrs[name]
		if e != nil && time.Since(e.at) < apiErrorTTL && e.r.LastSyncResourceVersion() == e.rv {
			held = append(held, name)
		}
	}
	return held
}

func (t *term) run(ctx context.Context) error {
	t.log.Info("leadership term starting")
	defer func() {
		t.log.Info("leadership term ended; watcher stopped",
			"commands", t.commands.Load(), "entries", t.entries.Load(), "duration", time.Since(t.started).Round(time.Millisecond))
	}()

	if !t.barrier(ctx) {
		return nil
	}

	type watched struct {
		kind     kind
		resource *kubeclient.Resource
		inf      cache.SharedIndexInformer
	}
	informers := []*watched{
		{kind: kindService, resource: kubeclient.Services},
		{kind: kindSlice, resource: kubeclient.EndpointSlices},
		{kind: kindNamespace, resource: kubeclient.Namespaces},
	}
	if t.w.watchPods {
		informers = append(informers, &watched{kind: kindPod, resource: kubeclient.Pods})
	}
	for _, w := range informers {
		inf, err := pagedInformer(t, w.resource)
		if err != nil {
			return err
		}
		w.inf = inf
	}
	t.services, t.slices, t.namespaces = informers[0].inf, informers[1].inf, informers[2].inf
	if t.w.watchPods {
		t.pods = informers[3].inf
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.q = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[key](retryBaseDelay, retryMaxDelay))
	// Stop everything at once: cancel the informers' context, shut the queue
	// down (which also ends the feeder's Get), then wait for the goroutines.
	var running sync.WaitGroup // the informers
	defer func() {
		cancel()
		t.q.ShutDown()
		wg.Wait()
		stopped := make(chan struct{})
		go func() { running.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(stopGrace):
			t.log.Warn("informers still stopping; leaving them to finish in the background", "waited", stopGrace)
		}
	}()

	// probe lists at most one object of a resource: the cheapest request
	// that needs what the informer's list needs (a reachable API server
	// that authorizes kdnsd).
	one := metav1.ListOptions{Limit: 1}
	probes := make(map[string]func(context.Context) error, len(informers))
	synced := make([]cache.SharedIndexInformer, 0, len(informers))
	for _, w := range informers {
		name := w.resource.Name
		synced = append(synced, w.inf)
		probes[name] = func(ctx context.Context) error {
			_, err := t.w.client.List(ctx, w.resource, "", one)
			return err
		}
		if _, err := w.inf.AddEventHandler(t.handler(w.kind)); err != nil {
			return fmt.Errorf("watcher: add %s event handler: %w", name, err)
		}
		if err := w.inf.SetWatchErrorHandlerWithContext(t.watchErrorHandler(name)); err != nil {
			return fmt.Errorf("watcher: set %s watch error handler: %w", name, err)
		}
	}
	for _, inf := range synced {
		running.Go(func() { inf.RunWithContext(ctx) })
	}
	wg.Go(func() { t.probeAPI(ctx, cancel, probes) })

	if !t.waitForCaches(ctx, synced...) {
		return nil
	}
	t.synced = true
	t.enqueueAll(t.services.GetStore(), t.slices.GetStore())

	items := make(chan key)
	wg.Go(func() { t.feed(ctx, items) })
	wg.Go(func() { t.watchFormat(ctx) })
	// slots holds one token per commit in flight (see commitsInFlight).
	slots := make(chan struct{}, commitsInFlight)
	for {
		batch, ok := t.collect(ctx, items)
		if !ok {
			return nil
		}
		if t.pipelined(batch) {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				t.process(ctx, batch)
			})
			continue
		}
		for range commitsInFlight {
			slots <- struct{}{}
		}
		t.process(ctx, batch)
		for range commitsInFlight {
			<-slots
		}
		t.queueBacklog()
	}
}

// commitsInFlight is how many batches a streaming term commits at once. A
// change that arrives while a commit is in flight is appended to the log
// right behind it, instead of after that commit has gone round the
// followers: a Service's EndpointSlice, whose event comes a few
// milliseconds after the Service's, then no longer waits a whole commit.
// Batches in flight never share a key (the work queue hands a key out
// again only once its batch is done), so each diffs against a View that
// holds every earlier change of its own keys.
const commitsInFlight = 2

// pipelined reports whether batch may be committed beside the batch in
// flight: only while streaming. The initial diff, the namespace and pod
// diff and a format change update the term's bookkeeping (initial,
// pending, replicating), which the worker alone owns, so they are committed
// with nothing else in flight.
func (t *term) pipelined(batch []key) bool {
	return t.initial == nil && len(t.pending) == 0 && len(t.backlog) == 0 &&
		!slices.ContainsFunc(batch, func(k key) bool { return k.kind == kindFormat })
}

// barrier waits for a Raft barrier, retrying with backoff. It reports false
// when ctx ended first.
func (t *term) barrier(ctx context.Context) bool {
	delay := barrierBaseDelay
	for {
		start := time.Now()
		err := t.w.raft.Barrier(ctx)
		if err == nil {
			t.setErr(&t.barrierErr, nil)
			t.log.Debug("raft barrier done", "took", time.Since(start), "index", t.w.views.View().Index())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		t.setErr(&t.barrierErr, err)
		t.log.Warn("raft barrier failed; retrying", "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false
		}
		delay = min(2*delay, barrierMaxDelay)
	}
}

func (t *term) setErr(field *error, err error) {
	t.mu.Lock()
	*field = err
	t.mu.Unlock()
}

// handler queues the key of every object an informer reports after its
// initial list, and notes when an event first reported it (for
// Config.Committed). The objects of the initial list are not queued: once
// the caches have synced, the initial diff (enqueueAll, and followFormat for
// namespaces and pods) queues every key the API or the View knows, two
// batches at a time; queued here as well, every object's key would pass
// through the queue's set of keys, a map that keeps its largest size for
// the term. Deletions may come as cache.DeletedFinalStateUnknown (the watch
// missed the delete and a relist noticed it); its key is all that is
// needed.
func (t *term) handler(k kind) cache.ResourceEventHandler {
	enqueue := func(obj any, initial bool) {
		if initial {
			return
		}
		name, err := cache.DeletionHandlingObjectToName(obj)
		if err != nil {
			t.log.Error("cannot name object from informer", "err", err)
			return
		}
		key := key{kind: k, namespace: name.Namespace, name: name.Name}
		if t.w.committed != nil {
			t.seenMu.Lock()
			if _, ok := t.seen[key]; !ok {
				t.seen[key] = time.Now()
			}
			t.seenMu.Unlock()
		}
		t.q.Add(key)
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj, false) },
		DeleteFunc: func(obj any) { enqueue(obj, false) },
	}
}

// observeCommitted reports to Config.Committed how long each of keys, whose
// change was just committed, waited since an event first reported it.
func (t *term) observeCommitted(keys []key) {
	if t.w.committed == nil {
		return
	}
	now := time.Now()
	t.seenMu.Lock()
	defer t.seenMu.Unlock()
	for _, k := range keys {
		if at, ok := t.seen[k]; ok {
			delete(t.seen, k)
			t.w.committed(now.Sub(at))
		}
	}
}

// forgetSeen drops the event times of keys whose objects turned out equal
// to the View's: they changed nothing, so they have no latency to report.
func (t *term) forgetSeen(keys []key) {
	t.seenMu.Lock()
	defer t.seenMu.Unlock()
	for _, k := range keys {
		delete(t.seen, k)
	}
}

// watchErrorHandler logs list/watch failures (client-go retries them with
// backoff) and makes them visible in State.
func (t *term) watchErrorHandler(resource string) cache.WatchErrorHandlerWithContext {
	return func(ctx context.Context, r *cache.Reflector, err error) {
		switch {
		case ctx.Err() != nil:
			return // the term is ending
		case err == io.EOF:
			return // watch closed normally (a wrapped EOF is a failed request)
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			t.log.Debug("watch expired; relisting", "resource", resource, "err", err)
			return
		case err == io.ErrUnexpectedEOF:
			t.log.Info("watch closed unexpectedly; rewatching", "resource", resource, "err", err)
			return
		}
		t.log.Warn("Kubernetes API list/watch failed; retrying with backoff", "resource", resource, "err", err)
		t.mu.Lock()
		t.apiErrs[resource] = &apiError{err: err, at: time.Now(), r: r, rv: r.LastSyncResourceVersion()}
		t.mu.Unlock()
	}
}

// probeAPI ends the term (setting apiBack, then calling cancel) when the API
// server answers again while informers are held up, so that Run lists
// afresh at once. client-go's reflector retries a failed list or watch only
// after a backoff that doubles from 0.8 s (with up to as much again of
// jitter) to 30 s and resets after two quiet minutes; the shared informer
// does not let it be set. After an outage of a
// minute, or a first list refused while a restarted API server's authorizer
// is not ready, the next attempt can thus be many seconds after the API
// server is back.
//
// Informers are held up while list/watch errors say so (heldUpLocked), and
// from the moment the client's requests have failed for apiUnreachableGrace
// (Config.Reachability: a refused re-watch reaches no error handler) until
// a probe succeeds: that outage is latched in t.outage, since an answer
// that is itself a failure (a restarted API server's 403 before its
// authorizer is ready) already counts as one for the client.
//
// While informers are held up, probeAPI lists one object of each held-up
// resource (each resource, in an outage) every apiProbeInterval, one
// request at a time: an operator sees at most about two cheap requests a
// second from the leader while the API server is down, and none while the
// informers work. A term that Run started after such a restart may have a
// holdoff before probing (nextHoldoff).
func (t *term) probeAPI(ctx context.Context, cancel context.CancelFunc, probes map[string]func(context.Context) error) {
	tick := time.NewTicker(apiProbeInterval)
	defer tick.Stop()
	var lastErr string // the last probe failure logged
	all := slices.Sorted(maps.Keys(probes))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(t.started) < t.holdoff {
			continue
		}
		t.mu.Lock()
		if since, err := t.unreachable(); !since.IsZero() && t.outage == nil {
			t.outage = &apiError{err: err, at: since}
		}
		held := t.heldUpLocked()
		outage := t.outage != nil
		t.mu.Unlock()
		if outage {
			held = all
		}
		if len(held) == 0 {
			continue
		}
		if err := t.answers(ctx, held, probes); err != nil {
			// Logged when it changes: why the API server does not count as
			// back is what an operator asks while the informers wait.
			if msg := err.Error(); msg != lastErr && ctx.Err() == nil {
				t.log.Info("Kubernetes API probe failed; informers stay held up", "err", err)
				lastErr = msg
			}
			continue
		}
		// An informer that recovered on its own meanwhile needs no restart.
		// (After an outage there is no telling: the probe's answer is also
		// the client's, so restart.)
		t.mu.Lock()
		stillHeld := outage || len(t.heldUpLocked()) > 0
		t.mu.Unlock()
		if stillHeld {
			t.apiBack.Store(true)
			cancel()
			return
		}
	}
}

// answers returns the first error of one list of each of the resources.
func (t *term) answers(ctx context.Context, resources []string, probes map[string]func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, apiProbeTimeout)
	defer cancel()
	for _, name := range resources {
		if err := probes[name](ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// waitForCaches waits until every informer has listed once. It reports false
// when ctx ended first.
func (t *term) waitForCaches(ctx context.Context, infs ...cache.SharedIndexInformer) bool {
	tick := time.NewTicker(syncLogInterval)
	defer tick.Stop()
	start := time.Now()
	for _, inf := range infs {
		for synced := false; !synced; {
			select {
			case <-inf.HasSyncedChecker().Done():
				synced = true
			case <-ctx.Done():
				return false
			case <-tick.C:
				t.log.Warn("still waiting for Kubernetes API caches to sync",
					"waited", time.Since(start).Round(time.Second), "state", t.state())
			}
		}
	}
	t.log.Info("Kubernetes API caches synced", "took", time.Since(start).Round(time.Millisecond))
	return true
}

// enqueueAll queues every key the API knows and every key the View knows, so
// that the first batches commit exactly the difference, deletions included.
func (t *term) enqueueAll(svcStore, sliceStore cache.Store) {
	add := func(k kind, keys []string) {
		for _, s := range keys {
			ns, name, err := cache.SplitMetaNamespaceKey(s)
			if err != nil {
				continue
			}
			t.add(key{kind: k, namespace: ns, name: name})
		}
	}
	svcKeys, sliceKeys := svcStore.ListKeys(), sliceStore.ListKeys()
	v := t.w.views.View()
	vs, ve := v.Counts()
	t.initial = make(map[key]struct{}, max(len(svcKeys), vs)+max(len(sliceKeys), ve))
	add(kindService, svcKeys)
	add(kindSlice, sliceKeys)
	for s := range v.Services() {
		t.add(key{kind: kindService, namespace: s.Namespace, name: s.Name})
	}
	for e := range v.Slices() {
		t.add(key{kind: kindSlice, namespace: e.Namespace, name: e.Name})
	}
	t.log.Info("diffing API state against the view",
		"api_services", len(svcKeys), "api_endpointslices", len(sliceKeys),
		"view_services", vs, "view_endpointslices", ve, "view_index", v.Index(),
		"keys", len(t.initial))
	// By name, so that a Service and its EndpointSlices (named after it)
	// are committed together, mostly in the same batch: in the order listed,
	// every Service would be committed and indexed without its endpoints,
	// and again with them.
	slices.SortFunc(t.backlog, func(a, b key) int {
		return cmp.Or(strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind))
	})
	// Whether namespaces and pods are replicated is decided by the worker,
	// like every later change of the command format.
	t.backlog = append(t.backlog, key{kind: kindFormat})
	t.queueBacklog()
	t.initialDone()
}

// watchFormat queues a kindFormat key whenever the command format Raft
// commits in changes, until ctx ends.
func (t *term) watchFormat(ctx context.Context) {
	last := t.w.version()
	tick := time.NewTicker(formatPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if v := t.w.version(); v != last {
			last = v
			t.q.Add(key{kind: kindFormat})
		}
	}
}

// followFormat starts or stops replicating namespaces and pods as the
// command format now allows. When it starts, it queues every namespace and
// pod key the API and the View know, as enqueueAll does for services: what
// changed while they were not replicated (a term's start, or a format
// that went back while a server of an older build joined) is repaired by
// that diff.
func (t *term) followFormat(view *fsm.View) {
	allowed := t.w.version() >= fsm.PodsCommandVersion
	if allowed == t.replicating {
		return
	}
	t.replicating = allowed
	if !allowed {
		t.pending = nil
		t.log.Info("command format carries no namespaces or pods; not replicating them", "version", t.w.version())
		return
	}
	t.pending = map[key]struct{}{}
	add := func(k key) {
		if _, dup := t.pending[k]; !dup {
			t.pending[k] = struct{}{}
			t.backlog = append(t.backlog, k)
		}
	}
	for _, name := range t.namespaces.GetStore().ListKeys() {
		add(key{kind: kindNamespace, name: name})
	}
	for ns := range view.Namespaces() {
		add(key{kind: kindNamespace, name: ns})
	}
	if t.pods != nil {
		for _, s := range t.pods.GetStore().ListKeys() {
			if ns, name, err := cache.SplitMetaNamespaceKey(s); err == nil {
				add(key{kind: kindPod, namespace: ns, name: name})
			}
		}
	}
	for p := range view.Pods() {
		add(key{kind: kindPod, namespace: p.Namespace, name: p.Name})
	}
	t.log.Info("replicating namespaces and pods", "version", t.w.version(), "watch_pods", t.pods != nil, "keys", len(t.pending))
}

// tracking returns cmds with the commands that make the View's Tracked
// follow what this term replicates. A kind it no longer replicates (pods,
// after a leader in verified mode) is untracked first, in the same entry as
// the first deletions of its records, so that no replica takes a half-deleted
// kind for a whole one; a kind it replicates is tracked with the entry that
// completes its diff (every pending key in this batch).
func (t *term) tracking(view *fsm.View, batch []key, cmds []fsm.Command) []fsm.Command {
	if !t.replicating {
		return cmds
	}
	want := fsm.Tracked{Namespaces: true, Pods: t.pods != nil}
	have := view.Tracked()
	if kept := (fsm.Tracked{Namespaces: have.Namespaces && want.Namespaces, Pods: have.Pods && want.Pods}); kept != have {
		cmds = append([]fsm.Command{fsm.SetTracked(kept)}, cmds...)
		have = kept
	}
	if have == want {
		return cmds
	}
	left := len(t.pending)
	for _, k := range batch {
		if _, ok := t.pending[k]; ok {
			left--
		}
	}
	if left == 0 {
		cmds = append(cmds, fsm.SetTracked(want))
	}
	return cmds
}

// add notes one key of the initial diff, for queueBacklog to queue.
func (t *term) add(k key) {
	if _, dup := t.initial[k]; !dup {
		t.initial[k] = struct{}{}
		t.backlog = append(t.backlog, k)
	}
}

// queueBacklog queues keys of the backlog while the queue holds fewer than
// two batches. The workqueue keeps a set of the keys it holds, and a Go map
// never gives back the room it grew to: queued at once, every key of the
// cluster's objects would stay in a leader's memory for its whole term
// (3.2 MB of live heap at 10k services, a heap profile showed;
// BENCHMARKS.md). Two batches keep the worker's next batch full.
func (t *term) queueBacklog() {
	n := max(0, min(len(t.backlog), 2*t.w.maxBatch-t.q.Len()))
	for _, k := range t.backlog[:n] {
		t.q.Add(k)
	}
	t.backlog = t.backlog[n:]
	if len(t.backlog) == 0 {
		t.backlog = nil
	}
}

// initialDone switches to streaming once the initial diff is committed.
func (t *term) initialDone() {
	if t.initial == nil || len(t.initial) > 0 {
		return
	}
	t.initial = nil
	t.mu.Lock()
	t.phase = "streaming"
	t.mu.Unlock()
	t.log.Info("initial sync committed; streaming changes",
		"commands", t.commands.Load(), "entries", t.entries.Load(), "took", time.Since(t.started).Round(time.Millisecond))
}

// feed moves keys from the queue to the batching worker, so that the worker
// can wait for the next key with a timeout.
func (t *term) feed(ctx context.Context, items chan<- key) {
	defer close(items)
	for {
		k, shutdown := t.q.Get()
		if shutdown {
			return
		}
		select {
		case items <- k:
		case <-ctx.Done():
			t.q.Done(k)
			return
		}
	}
}

// collect takes one key (blocking), then every key already waiting, up to
// MaxBatch: group commit. A change that finds the worker idle is committed
// at once, without waiting for company, and the changes that arrive while
// a commit is in flight go together into the next entry, so a burst becomes
// few large entries by itself. It reports false when ctx ended.
func (t *term) collect(ctx context.Context, items <-chan key) ([]key, bool) {
	var batch []key
	for len(batch) < t.w.maxBatch {
		if len(batch) > 0 {
			select {
			case k, ok := <-items:
				if !ok {
					return nil, false
				}
				batch = append(batch, k)
				continue
			default:
			}
			// feed may not have handed over the next key yet; the queue
			// says whether one waits.
			if t.q.Len() == 0 {
				return batch, true
			}
		}
		select {
		case k, ok := <-items:
			if !ok {
				return nil, false
			}
			batch = append(batch, k)
		case <-ctx.Done():
			return nil, false
		}
	}
	return batch, true
}

// process diffs a batch of keys against the View and commits the commands
// as one entry. On failure every key is requeued with per-key backoff, unless
// the term has ended: then the batch is dropped and the next leader's resync
// repairs it.
func (t *term) process(ctx context.Context, batch []key) {
	view := t.w.views.View()
	// A format change first, so that it holds for every key of the batch.
	if slices.ContainsFunc(batch, func(k key) bool { return k.kind == kindFormat }) {
		t.followFormat(view)
	}
	cmds := make([]fsm.Command, 0, len(batch))
	var changed, unchanged []key
	for _, k := range batch {
		switch k.kind {
		case kindFormat:
			continue
		case kindNamespace, kindPod:
			if !t.replicating {
				unchanged = append(unchanged, k)
				continue // the diff when replication starts covers it
			}
		}
		if c, ok := t.diff(view, k); ok {
			cmds = append(cmds, c)
			changed = append(changed, k)
		} else {
			unchanged = append(unchanged, k)
		}
	}
	cmds = t.tracking(view, batch, cmds)
	var err error
	if len(cmds) > 0 {
		start := time.Now()
		err = t.w.raft.Commit(ctx, cmds)
		if err == nil {
			t.commands.Add(int64(len(cmds)))
			t.entries.Add(1)
			t.setErr(&t.commitErr, nil)
			t.log.Debug("committed batch", "keys", len(batch), "commands", len(cmds), "took", time.Since(start))
		}
	}
	switch {
	case err == nil:
		t.shareCommitted(changed)
		t.observeCommitted(changed)
		t.forgetSeen(unchanged)
		for _, k := range batch {
			t.q.Forget(k)
			t.q.Done(k)
		}
	case ctx.Err() != nil:
		t.log.Info("term ended during commit; dropping batch (the next leader's resync repairs it)",
			"commands", len(cmds), "err", err)
		for _, k := range batch {
			t.q.Done(k)
		}
		return
	default:
		t.setErr(&t.commitErr, err)
		t.log.Warn("commit failed; requeueing batch with backoff",
			"keys", len(batch), "commands", len(cmds), "first_key", batch[0].String(),
			"retry", t.q.NumRequeues(batch[0])+1, "err", err)
		for _, k := range batch {
			t.q.AddRateLimited(k)
			t.q.Done(k)
		}
		return
	}
	if t.initial != nil {
		for _, k := range batch {
			delete(t.initial, k)
		}
		t.initialDone()
	}
	// A pipelined batch finds pending empty and must not write to it.
	if len(t.pending) > 0 {
		for _, k := range batch {
			delete(t.pending, k)
		}
	}
}

// diff returns the command that makes the View's record for k match the
// API's object, if they differ.
func (t *term) diff(view *fsm.View, k key) (fsm.Command, bool) {
	switch k.kind {
	case kindService:
		sk := fsm.ServiceKey{Namespace: k.namespace, Name: k.name}
		want, _, err := record[fsm.Service](t.services.GetStore(), k.namespace, k.name)
		if err != nil {
			t.log.Error("informer store failed", "key", k.String(), "err", err)
			return fsm.Command{}, false
		}
		return change(view.Service(sk), want, fsm.DeleteService(sk), fsm.UpsertService)
	case kindSlice:
		sk := fsm.SliceKey{Namespace: k.namespace, Name: k.name}
		want, _, err := record[fsm.EndpointSlice](t.slices.GetStore(), k.namespace, k.name)
		if err != nil {
			t.log.Error("informer store failed", "key", k.String(), "err", err)
			return fsm.Command{}, false
		}
		return change(view.Slice(sk), want, fsm.DeleteSlice(sk), fsm.UpsertSlice)
	case kindNamespace:
		have := view.HasNamespace(k.name)
		_, exists, err := record[struct{}](t.namespaces.GetStore(), "", k.name)
		if err != nil {
			t.log.Error("informer store failed", "key", k.String(), "err", err)
			return fsm.Command{}, false
		}
		switch {
		case exists && !have:
			return fsm.UpsertNamespace(k.name), true
		case !exists && have:
			return fsm.DeleteNamespace(k.name), true
		}
	case kindPod:
		pk := fsm.PodKey{Namespace: k.namespace, Name: k.name}
		var want *fsm.Pod
		if t.pods != nil { // else the View's pods go: this term does not watch them
			var err error
			if want, _, err = record[fsm.Pod](t.pods.GetStore(), k.namespace, k.name); err != nil {
				t.log.Error("informer store failed", "key", k.String(), "err", err)
				return fsm.Command{}, false
			}
		}
		return change(view.Pod(pk), want, fsm.DeletePod(pk), fsm.UpsertPod)
	}
	return fsm.Command{}, false
}

// change returns the command that makes the View's record have into want,
// the record the API holds (nil: none, or one without records): none when
// they are equal, del when want is nil, else upsert of want.
func change[T any, P interface {
	*T
	Equal(*T) bool
}](have, want P, del fsm.Command, upsert func(P) fsm.Command) (fsm.Command, bool) {
	switch {
	case want == nil && have == nil:
		return fsm.Command{}, false
	case want == nil:
		return del, true
	case have != nil && have.Equal(want):
		return fsm.Command{}, false
	}
	return upsert(want), true
}
