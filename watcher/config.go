package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kdnsd/kdnsd/dnsconfig"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
)

// ConfigWatcherConfig configures a ConfigWatcher.
type ConfigWatcherConfig struct {
	// Client reaches the Kubernetes API: get, list and watch on the
	// ConfigMap, create on events in its namespace.
	Client kubeclient.Client
	// Namespace and Name of the ConfigMap.
	Namespace, Name string
	// Zone is the cluster zone (records under it are checked against
	// Services).
	Zone string
	// CommandVersion returns the command format Raft commits in now; the
	// configuration is committed only from fsm.ConfigCommandVersion on.
	// Nil means format 1.
	CommandVersion func() int
	Views          ViewSource
	Raft           Committer
	Logger         *slog.Logger
}

// configRecheck is how often a term compares the ConfigMap with the View
// without an event: a refusal for a Service collision ends when the Service
// goes, and a format that could not carry the configuration may have moved
// on.
const configRecheck = time.Second

// ConfigWatcher commits the DNS configuration of one ConfigMap while this
// replica leads. Run it once per leadership term, beside Watcher.Run.
//
// Each time the ConfigMap changes (and every configRecheck) the term parses
// it (dnsconfig.Parse, dnsconfig.CheckServices against the View) and
// compares the outcome with the View: a valid configuration that differs
// from the one in force is committed (fsm.SetConfig), a deleted ConfigMap
// commits the flags back (an empty configuration), and an invalid one,
// unless the View already records that same refusal, commits
// fsm.RejectConfig, which leaves the configuration in force as it is; then,
// once per refusal, the leader logs it, records a Warning Event on the
// ConfigMap and counts it (Rejections). Since both outcomes are in the log,
// a new leader neither repeats them nor misses them.
type ConfigWatcher struct {
	cfg        ConfigWatcherConfig
	log        *slog.Logger
	rejections atomic.Uint64

	mu    sync.Mutex
	state string
}

// NewConfigWatcher checks cfg and returns a ConfigWatcher.
func NewConfigWatcher(cfg ConfigWatcherConfig) (*ConfigWatcher, error) {
	switch {
	case cfg.Client == nil || cfg.Views == nil || cfg.Raft == nil:
		return nil, errors.New("watcher: ConfigWatcherConfig needs Client, Views and Raft")
	case cfg.Namespace == "" || cfg.Name == "":
		return nil, errors.New("watcher: ConfigWatcherConfig needs the ConfigMap's Namespace and Name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CommandVersion == nil {
		cfg.CommandVersion = func() int { return fsm.BaseCommandVersion }
	}
	return &ConfigWatcher{cfg: cfg, state: "idle",
		log: cfg.Logger.With("component", "config", "configmap", cfg.Namespace+"/"+cfg.Name)}, nil
}

// Rejections counts the configurations this replica refused while leading.
func (c *ConfigWatcher) Rejections() uint64 { return c.rejections.Load() }

// State says what the term does, for status pages: "idle", "syncing",
// "watching", or what it waits for.
func (c *ConfigWatcher) State() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *ConfigWatcher) setState(s string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// Run watches the ConfigMap and commits its configuration until ctx ends.
func (c *ConfigWatcher) Run(ctx context.Context) {
	defer c.setState("idle")
	c.setState("syncing")
	for err := c.cfg.Raft.Barrier(ctx); err != nil; err = c.cfg.Raft.Barrier(ctx) {
		if ctx.Err() != nil {
			return
		}
		c.setState("backoff: raft barrier: " + err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(barrierBaseDelay):
		}
	}
	inf := kubeclient.Informer(c.cfg.Client, kubeclient.ConfigMaps, c.cfg.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", c.cfg.Name).String()
	})
	changed := make(chan struct{}, 1)
	signal := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: signal, UpdateFunc: func(_, o any) { signal(o) }, DeleteFunc: signal,
	}); err != nil {
		c.log.Error("watching the configuration ConfigMap", "err", err)
		return
	}
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *cache.Reflector, err error) {
		if ctx.Err() == nil && !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			c.log.Warn("Kubernetes API list/watch of the configuration ConfigMap failed; retrying with backoff", "err", err)
			c.setState("backoff: list/watch configmap: " + err.Error())
		}
	})
	lister := corelisters.NewConfigMapLister(inf.GetIndexer())
	var running sync.WaitGroup
	defer running.Wait()
	running.Go(func() { inf.RunWithContext(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	tick := time.NewTicker(configRecheck)
	defer tick.Stop()
	for {
		cm, err := lister.ConfigMaps(c.cfg.Namespace).Get(c.cfg.Name)
		if apierrors.IsNotFound(err) {
			cm, err = nil, nil
		}
		if err == nil {
			err = c.sync(ctx, cm)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.setState("backoff: " + err.Error())
		default:
			c.setState("watching")
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// source names a version of the ConfigMap.
func source(cm *corev1.ConfigMap) string {
	return cm.Namespace + "/" + cm.Name + "@" + cm.ResourceVersion
}

// sync commits what cm (nil: deleted) asks for, if the View does not hold
// it yet.
func (c *ConfigWatcher) sync(ctx context.Context, cm *corev1.ConfigMap) error {
	if v := c.cfg.CommandVersion(); v < fsm.ConfigCommandVersion {
		return fmt.Errorf("waiting for every replica to decode command format %d (now %d) to commit the configuration",
			fsm.ConfigCommandVersion, v)
	}
	view := c.cfg.Views.View()
	st := view.Config()
	if cm == nil {
		if st.Config == nil && st.Rejected == nil {
			return nil
		}
		c.log.Info("configuration ConfigMap deleted: the flags are in force again")
		return c.cfg.Raft.Commit(ctx, []fsm.Command{fsm.SetConfig(nil)})
	}
	cfg, err := dnsconfig.Parse(cm.Data, c.cfg.Zone, source(cm))
	if err == nil {
		err = dnsconfig.CheckServices(cfg, c.cfg.Zone, view)
	}
	if err != nil {
		rej := fsm.ConfigRejection{Source: source(cm), Error: err.Error()}
		if st.Rejected != nil && *st.Rejected == rej {
			return nil
		}
		if err := c.cfg.Raft.Commit(ctx, []fsm.Command{fsm.RejectConfig(rej)}); err != nil {
			return err
		}
		c.rejections.Add(1)
		c.log.Error("configuration refused; the last good one stays in force", "source", rej.Source,
			"in_force", sourceOf(st), "err", err)
		c.event(ctx, cm, corev1.EventTypeWarning, "ConfigRejected",
			"kdnsd refused this configuration; the last good one ("+sourceOf(st)+") stays in force: "+rej.Error)
		return nil
	}
	if st.Config.Equal(cfg) && st.Rejected == nil {
		return nil
	}
	if err := c.cfg.Raft.Commit(ctx, []fsm.Command{fsm.SetConfig(cfg)}); err != nil {
		return err
	}
	index := c.cfg.Views.View().Config().Index
	c.log.Info("configuration committed", "source", cfg.Source, "index", index)
	c.event(ctx, cm, corev1.EventTypeNormal, "ConfigCommitted",
		fmt.Sprintf("kdnsd committed this configuration at raft index %d; every replica serves it from that index", index))
	return nil
}

// sourceOf names the configuration in force.
func sourceOf(st *fsm.ConfigState) string {
	if st.Config == nil {
		return "the flags"
	}
	return st.Config.Source
}

// maxEventMessage is the longest Event message the API server accepts.
const maxEventMessage = 1024

// event records an Event on cm. A failure is logged only: the outcome is
// in the Raft log (and kdnsd status) whether or not the Event is.
func (c *ConfigWatcher) event(ctx context.Context, cm *corev1.ConfigMap, typ, reason, msg string) {
	if len(msg) > maxEventMessage {
		msg = msg[:maxEventMessage-3] + "..."
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: cm.Name + ".", Namespace: cm.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: cm.Namespace,
			Name: cm.Name, UID: cm.UID, ResourceVersion: cm.ResourceVersion},
		Reason: reason, Message: msg, Type: typ, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source: corev1.EventSource{Component: "kdnsd"},
	}
	if err := c.cfg.Client.CreateEvent(ctx, ev); err != nil && ctx.Err() == nil {
		c.log.Warn("recording an Event on the configuration ConfigMap", "reason", reason, "err", err)
	}
}
