package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kdnsd/kdnsd/raftnode"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kdnsd/kdnsd/internal/kubeclient"
)

// VoterLabel marks pods that join as non-voting read replicas when its value
// is "false". Such pods must also match Config.Selector.
const VoterLabel = "kdnsd.io/voter"

// Defaults of Config fields left zero.
const (
	DefaultBootstrapExpect   = 3
	DefaultDeadServerTimeout = 5 * time.Minute
	DefaultInterval          = 5 * time.Second
	DefaultProbeTimeout      = 2 * time.Second
)

// Node is what membership needs of the Raft node; *raftnode.Node has it.
type Node interface {
	HasState() bool
	Bootstrap(peers []raftnode.Peer) error
	Servers() ([]raftnode.ServerInfo, error)
	AddServer(ctx context.Context, id, addr string, voter bool) error
	RemoveServer(ctx context.Context, id string) error
	DemoteVoter(ctx context.Context, id string) error
	Leader() (id, addr string)
	Status() raftnode.Status
	SetCommandVersion(version int) error
}

var _ Node = (*raftnode.Node)(nil)

// ProbeFunc asks the kdnsd pod name at ip for its status: whether it has
// Raft state (a non-empty Raft configuration), its incarnation and how far it
// has applied the log. An error means the pod could not tell: it is
// unreachable, or something else answers at its IP.
type ProbeFunc func(ctx context.Context, name, ip string) (raftnode.Status, error)

// Config configures a Membership.
type Config struct {
	// Client reads pods and the StatefulSet; it needs get/list/watch on pods
	// and on apps/statefulsets in Namespace.
	Client kubeclient.Client
	// Namespace is the namespace of the kdnsd pods and StatefulSet.
	Namespace string
	// Selector is a label selector matching every kdnsd pod: the voter
	// StatefulSet's and any non-voter read replicas' (label
	// kdnsd.io/voter=false).
	Selector string
	// StatefulSet is the name of the voter StatefulSet: pods <StatefulSet>-N
	// with N < spec.replicas are voters.
	StatefulSet string
	// RaftPort is the port of every pod's Raft transport; StatusPort the port
	// of every pod's HTTP /status page (used by the default Probe).
	RaftPort   int
	StatusPort int
	// BootstrapExpect is how many voters bootstrap a new cluster: pods
	// <StatefulSet>-0 … <StatefulSet>-(BootstrapExpect-1). Default 3.
	BootstrapExpect int
	// DeadServerTimeout is how long a server no one wants (not a voter
	// ordinal below spec.replicas, not a present non-voter pod) may stay
	// unreachable before the leader removes it. Default 5m.
	DeadServerTimeout time.Duration
	// Self is this pod's name (its Raft server ID); Voter whether it is a
	// voter (a non-voter never bootstraps).
	Self  string
	Voter bool
	// Probe asks a peer whether it has Raft state; the default GETs
	// http://<ip>:<StatusPort>/status (see HTTPProbe).
	Probe ProbeFunc
	// Interval is how often Bootstrap re-checks and Reconcile re-runs without
	// an event from the API server. Default 5s.
	Interval time.Duration
	// ProbeTimeout bounds one probe. Default 2s.
	ProbeTimeout time.Duration
	Logger       *slog.Logger
}

// Membership discovers the kdnsd pods and keeps the Raft group in step with
// them. Create it with New and call Start once. Addr works at once (it finds
// nothing until the caches have synced); Bootstrap and Reconcile wait for
// Start to sync the caches, so Start may run in a goroutine of its own.
type Membership struct {
	cfg    Config
	log    *slog.Logger
	podInf cache.SharedIndexInformer
	stsInf cache.SharedIndexInformer
	pods   corelisters.PodNamespaceLister
	sts    appslisters.StatefulSetNamespaceLister

	started atomic.Bool
	synced  chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every pod/StatefulSet event

	// waiting is why Bootstrap waits, "" when it does not.
	waiting atomic.Pointer[string]
}

// New checks cfg, fills in defaults and returns a Membership.
func New(cfg Config) (*Membership, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("membership: Config.Client is nil")
	case cfg.Namespace == "":
		return nil, errors.New("membership: Config.Namespace is empty")
	case cfg.StatefulSet == "":
		return nil, errors.New("membership: Config.StatefulSet is empty")
	case cfg.Self == "":
		return nil, errors.New("membership: Config.Self is empty")
	case cfg.RaftPort <= 0 || cfg.RaftPort > 65535:
		return nil, fmt.Errorf("membership: Config.RaftPort %d out of range", cfg.RaftPort)
	case cfg.Probe == nil && (cfg.StatusPort <= 0 || cfg.StatusPort > 65535):
		return nil, fmt.Errorf("membership: Config.StatusPort %d out of range", cfg.StatusPort)
	case cfg.BootstrapExpect < 0:
		return nil, fmt.Errorf("membership: negative Config.BootstrapExpect %d", cfg.BootstrapExpect)
	case cfg.DeadServerTimeout < 0 || cfg.Interval < 0 || cfg.ProbeTimeout < 0:
		return nil, errors.New("membership: negative duration in Config")
	}
	sel, err := labels.Parse(cfg.Selector)
	if err != nil {
		return nil, fmt.Errorf("membership: Config.Selector %q: %w", cfg.Selector, err)
	}
	if sel.Empty() {
		return nil, errors.New("membership: Config.Selector is empty; it must pick out the kdnsd pods")
	}
	if cfg.BootstrapExpect == 0 {
		cfg.BootstrapExpect = DefaultBootstrapExpect
	}
	if cfg.DeadServerTimeout == 0 {
		cfg.DeadServerTimeout = DefaultDeadServerTimeout
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.Probe == nil {
		cfg.Probe = HTTPProbe(cfg.StatusPort)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Membership{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "membership"),
		synced:  make(chan struct{}),
		changed: make(chan struct{}),
	}
	m.podInf = kubeclient.Informer(cfg.Client, kubeclient.Pods, cfg.Namespace,
		func(o *metav1.ListOptions) { o.LabelSelector = sel.String() })
	m.stsInf = kubeclient.Informer(cfg.Client, kubeclient.StatefulSets, cfg.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.StatefulSet).String()
	})
	if err := m.podInf.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("membership: pods transform: %w", err)
	}
	m.pods = corelisters.NewPodLister(m.podInf.GetIndexer()).Pods(cfg.Namespace)
	m.sts = appslisters.NewStatefulSetLister(m.stsInf.GetIndexer()).StatefulSets(cfg.Namespace)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { m.notify() },
		UpdateFunc: func(any, any) { m.notify() },
		DeleteFunc: func(any) { m.notify() },
	}
	for name, inf := range map[string]cache.SharedIndexInformer{"pods": m.podInf, "statefulsets": m.stsInf} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("membership: %s event handler: %w", name, err)
		}
		if err := inf.SetWatchErrorHandlerWithContext(m.watchErrorHandler(name)); err != nil {
			return nil, fmt.Errorf("membership: %s watch error handler: %w", name, err)
		}
	}
	return m, nil
}

// Start starts the pod and StatefulSet informers, which run until ctx ends,
// and returns once their caches are synced (nil) or ctx ends first (its
// error). Call it once.
func (m *Membership) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("membership: Start called twice")
	}
	go m.podInf.RunWithContext(ctx)
	go m.stsInf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), m.podInf.HasSynced, m.stsInf.HasSynced) {
		return fmt.Errorf("membership: waiting for the pod and statefulset caches: %w", ctx.Err())
	}
	close(m.synced)
	m.log.Info("discovering peers", "namespace", m.cfg.Namespace, "selector", m.cfg.Selector, "statefulset", m.cfg.StatefulSet)
	return nil
}

// waitSynced waits for Start to sync the caches; false if ctx ends first.
func (m *Membership) waitSynced(ctx context.Context) bool {
	select {
	case <-m.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// Addr returns the current Raft address (pod IP:RaftPort) of the pod named
// id, from the informer cache; false when there is no such pod or it has no
// IP. It is raftnode.Config.Discovered.
func (m *Membership) Addr(id string) (string, bool) {
	p, err := m.pods.Get(id)
	if err != nil {
		return "", false
	}
	ip := podIP(p)
	if ip == "" {
		return "", false
	}
	return m.raftAddr(ip), true
}

func (m *Membership) raftAddr(ip string) string {
	return net.JoinHostPort(ip, strconv.Itoa(m.cfg.RaftPort))
}

// pod is what membership knows of one kdnsd pod.
type pod struct {
	name     string
	ip       string // "" while it has none
	deleting bool   // deletionTimestamp set: shutting down
	nonVoter bool   // labelled kdnsd.io/voter=false
}

// view is the informer caches at one moment.
type view struct {
	pods map[string]pod
	// replicas is the voter StatefulSet's spec.replicas, -1 while the
	// StatefulSet is unknown.
	replicas int
}

// snapshot reads the informer caches.
func (m *Membership) snapshot() view {
	v := view{pods: map[string]pod{}, replicas: -1}
	list, _ := m.pods.List(labels.Everything()) // the informer holds only the selector's pods
	for _, p := range list {
		v.pods[p.Name] = pod{
			name:     p.Name,
			ip:       podIP(p),
			deleting: p.DeletionTimestamp != nil,
			nonVoter: p.Labels[VoterLabel] == "false",
		}
	}
	if s, err := m.sts.Get(m.cfg.StatefulSet); err == nil {
		v.replicas = 1 // the API default
		if s.Spec.Replicas != nil {
			v.replicas = int(*s.Spec.Replicas)
		}
	}
	return v
}

// podIP is the pod's IP, "" when it has none or no longer holds it.
func podIP(p *corev1.Pod) string {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return ""
	}
	if net.ParseIP(p.Status.PodIP) == nil {
		return ""
	}
	return p.Status.PodIP
}

// ordinal returns N of a pod named <sts>-N.
func ordinal(name, sts string) (int, bool) {
	s, ok := strings.CutPrefix(name, sts+"-")
	if !ok || s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (m *Membership) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// changes returns a channel closed at the next pod or StatefulSet event.
func (m *Membership) changes() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// slimPod keeps only what membership reads of a pod.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, DeletionTimestamp: p.DeletionTimestamp,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}, nil
}

func (m *Membership) watchErrorHandler(resource string) cache.WatchErrorHandlerWithContext {
	return func(ctx context.Context, _ *cache.Reflector, err error) {
		switch {
		case ctx.Err() != nil, errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			m.log.Debug("watch expired; relisting", "resource", resource, "err", err)
		default:
			m.log.Warn("list/watch failed; retrying", "resource", resource, "err", err)
		}
	}
}
