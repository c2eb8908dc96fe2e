package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
)

// ViewSource gives the current state of the local replica.
type ViewSource interface {
	View() *fsm.View
}

// Committer replicates commands through Raft.
type Committer interface {
	// Barrier waits until the local FSM has applied everything committed
	// before.
	Barrier(ctx context.Context) error
	// Commit replicates one batch as one Raft entry. It returns when the
	// entry is applied locally (so that ViewSource shows it), or an error if
	// this replica is not the leader or the entry failed. It must return
	// promptly once ctx is done.
	Commit(ctx context.Context, cmds []fsm.Command) error
}

// Config configures a Watcher.
type Config struct {
	// Client reaches the Kubernetes API. It needs list and watch on
	// services and namespaces (core) and endpointslices (discovery.k8s.io)
	// in all namespaces, and on pods with WatchPods.
	Client kubeclient.Client
	// Reachability, when set, records the outcome of every request Client
	// makes, and of no other client's (kubeclient.NewTracked makes both).
	// It is how a term sees an outage that client-go's informers keep to
	// themselves (see term.probeAPI); without it only list/watch errors
	// their error handler hears count.
	Reachability *kubeclient.Reachability
	// WatchPods: replicate pods too (for pod records in verified mode).
	WatchPods bool
	// CommandVersion returns the command format Raft commits in now
	// (raftnode.Node.CommandVersion). Namespaces and pods are replicated
	// only while it is at least fsm.PodsCommandVersion: an older format
	// cannot carry them (a replica of an older build could not apply
	// them). Nil means format 1.
	CommandVersion func() int
	// Views gives the local replica's View, to diff against.
	Views ViewSource
	// Raft commits batches of commands.
	Raft Committer
	// Logger receives the watcher's logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxBatch caps the commands per Raft entry; 0 means DefaultMaxBatch.
	MaxBatch int
	// ListPageSize is how many objects a list asks the API server for at a
	// time; 0 means DefaultListPageSize.
	ListPageSize int
	// Committed, when set, is told for each change an informer event
	// reported (not its initial list) how long it took from the first such
	// event to the commit of the entry that carries it, on the leader: the
	// first part of a change's programming latency.
	Committed func(waited time.Duration)
}

// DefaultMaxBatch is Config.MaxBatch's default.
const DefaultMaxBatch = 500

// DefaultListPageSize is Config.ListPageSize's default: a page of 5,000
// objects decodes to about 7 MB (a cached object took ~1.5 KB,
// BENCHMARKS.md), and 100k services and their slices are read in 41
// requests, within the burst kdnsd's watcher client is allowed (see
// cmd/kdnsd).
const DefaultListPageSize = 5000

const (
	// stopGrace bounds how long Run waits for the informers' goroutines
	// after cancelling them; any still running then end on their own and
	// can only feed the term's dead queue.
	stopGrace = 2 * time.Second

	// Per-key backoff of failed commits.
	retryBaseDelay = 20 * time.Millisecond
	retryMaxDelay  = 30 * time.Second

	// Backoff of a failing Raft barrier at the start of a term.
	barrierBaseDelay = 100 * time.Millisecond
	barrierMaxDelay  = 5 * time.Second

	// apiErrorTTL is how long a list/watch error shows in State unless the
	// informer recovers visibly before. client-go's reflector retries at
	// least every 60s while the API server keeps failing.
	apiErrorTTL = 90 * time.Second

	// apiProbeInterval is how often a term whose informers a list/watch
	// error holds up asks the API server whether it answers again (see
	// term.probeAPI): about the delay between the API server's return and
	// a fresh list, and at most one request per interval while it is down.
	apiProbeInterval = 500 * time.Millisecond
	// apiProbeTimeout bounds one probe, so that a black-holed API server
	// also sees one request at a time.
	apiProbeTimeout = 2 * time.Second
	// apiUnreachableGrace is how long Client's requests must have failed
	// (Config.Reachability) before a term probes for the API server
	// without a list/watch error to go by: shorter outages are left to the
	// reflectors' own first retries, which come within 0.8–1.6 s.
	apiUnreachableGrace = 2 * time.Second
	// apiRestartMaxHoldoff caps how long a term started by such a restart
	// waits before it may be restarted again while its own first list
	// fails (see nextHoldoff).
	apiRestartMaxHoldoff = 30 * time.Second

	// syncLogInterval is how often a term that waits for its caches says so.
	syncLogInterval = 30 * time.Second
)

// Watcher turns Kubernetes API state into committed fsm commands while this
// replica leads. Create it with New; call Run once per leadership term.
type Watcher struct {
	client    kubeclient.Client
	reach     *kubeclient.Reachability // nil: not tracked
	views     ViewSource
	raft      Committer
	log       *slog.Logger
	maxBatch  int
	pageSize  int64
	watchPods bool
	version   func() int
	committed func(time.Duration)

	mu      sync.Mutex
	running bool
	term    *term // the running term, or nil
}

// New checks cfg and returns a Watcher.
func New(cfg Config) (*Watcher, error) {
	if cfg.Client == nil {
		return nil, errors.New("watcher: Config.Client is nil")
	}
	if cfg.Views == nil {
		return nil, errors.New("watcher: Config.Views is nil")
	}
	if cfg.Raft == nil {
		return nil, errors.New("watcher: Config.Raft is nil")
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("watcher: negative Config.MaxBatch %d", cfg.MaxBatch)
	}
	if cfg.ListPageSize < 0 {
		return nil, fmt.Errorf("watcher: negative Config.ListPageSize %d", cfg.ListPageSize)
	}
	w := &Watcher{
		client:    cfg.Client,
		reach:     cfg.Reachability,
		views:     cfg.Views,
		raft:      cfg.Raft,
		log:       cfg.Logger,
		maxBatch:  cfg.MaxBatch,
		pageSize:  int64(cfg.ListPageSize),
		watchPods: cfg.WatchPods,
		version:   cfg.CommandVersion,
		committed: cfg.Committed,
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = w.log.With("component", "watcher")
	if w.maxBatch == 0 {
		w.maxBatch = DefaultMaxBatch
	}
	if w.pageSize == 0 {
		w.pageSize = DefaultListPageSize
	}
	if w.version == nil {
		w.version = func() int { return fsm.BaseCommandVersion }
	}
	return w, nil
}

// Run runs one leadership term: it waits for a Raft barrier, starts shared
// informers on Services, EndpointSlices and Namespaces (and Pods with
// Config.WatchPods) in all namespaces, waits for their
// caches, commits the difference between the API state and the View, and then
// streams changes until ctx is done (leadership lost or shutdown). Then it
// stops the queue and the informers at once and returns nil.
//
// Failures of the barrier, the API server or commits are logged and retried
// with backoff for as long as ctx lasts; they never end Run. Informers held
// up by list/watch errors are not left to client-go's backoff (which grows
// to 30 s and more) once the API server answers again: Run then starts the
// term over with fresh informers (see term.probeAPI). Run returns an
// error only when another Run is still running on the same Watcher.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("watcher: Run called while another Run is running")
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.term = nil
		w.mu.Unlock()
	}()
	var holdoff time.Duration
	restarted := false // the term about to run replaces one the probe ended
	for {
		t := newTerm(w)
		t.holdoff = holdoff
		w.mu.Lock()
		w.term = t
		w.mu.Unlock()
		err := t.run(ctx)
		if err != nil || ctx.Err() != nil || !t.apiBack.Load() {
			return err
		}
		// The API server answers again while client-go's backoff would
		// still hold the informers back: start over with fresh informers,
		// exactly as a new leader would (barrier, list, diff against the
		// View), which keeps the diff's correctness argument unchanged.
		holdoff = nextHoldoff(holdoff, restarted && !t.synced)
		restarted = true
		w.log.Info("Kubernetes API server answers again; restarting the watcher with a fresh list", "holdoff", holdoff)
	}
}

// nextHoldoff returns how long the probe of the term that replaces one the
// probe ended waits before it may end that one too. failedRestart says the
// ended term was itself such a replacement and never synced its caches: the
// probe's list of one object succeeds where the informers' full lists fail
// (too large, too slow), so the holdoff doubles, from a second up to
// apiRestartMaxHoldoff, and full lists are not repeated faster than
// client-go's backoff would. Otherwise the replacement may be restarted as
// soon as the API server answers.
func nextHoldoff(prev time.Duration, failedRestart bool) time.Duration {
	if !failedRestart {
		return 0
	}
	return min(max(2*prev, time.Second), apiRestartMaxHoldoff)
}

// State describes what the watcher does, for status pages: "idle" (no term
// running), "syncing" (barrier, cache sync and initial diff), "streaming", or
// "backoff: <err>" while the barrier, the API server or commits fail.
func (w *Watcher) State() string {
	w.mu.Lock()
	t := w.term
	w.mu.Unlock()
	if t == nil {
		return "idle"
	}
	return t.state()
}
