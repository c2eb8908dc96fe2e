package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// formatRaft is a Committer that encodes every batch in the command format
// it is set to, as raftnode does, and applies it to a real fsm.Store as one
// log entry. A batch the format cannot carry fails to encode, as it would
// in raftnode: encodeErrs counts those.
type formatRaft struct {
	store   *fsm.Store
	version atomic.Int64

	mu         sync.Mutex
	index      uint64
	encodeErrs int
	entries    [][]fsm.Command
}

func (r *formatRaft) Barrier(ctx context.Context) error { return ctx.Err() }

func (r *formatRaft) Commit(ctx context.Context, cmds []fsm.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := fsm.EncodeVersion(cmds, int(r.version.Load()))
	if err != nil {
		r.encodeErrs++
		return err
	}
	if err := r.store.ApplyEntries([]fsm.Entry{{Index: r.index + 1, Data: data}}); err != nil {
		return err
	}
	r.index++
	r.entries = append(r.entries, cmds)
	return nil
}

func (r *formatRaft) encodeErrors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.encodeErrs
}

// podTerm runs one watcher term against the real API server as the kdnsd
// identity, committing through raft into store, until the test ends.
func podTerm(t *testing.T, store *fsm.Store, raft *formatRaft, watchPods bool) {
	t.Helper()
	client, err := kubeclient.New(testenv.Get(t).KdnsdConfig())
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Client: client, Views: store, Raft: raft, WatchPods: watchPods, MaxBatch: 4,
		CommandVersion: func() int { return int(raft.version.Load()) },
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(stopBound):
			t.Errorf("Run did not return within %v", stopBound)
		}
	})
}

func openPodStore(t *testing.T) *fsm.Store {
	t.Helper()
	store, err := fsm.Open(filepath.Join(t.TempDir(), "fsm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// runPod creates a pod and gives it phase and ips through the status
// subresource (no kubelet runs here).
func runPod(t *testing.T, c kubernetes.Interface, ns, name string, phase corev1.PodPhase, ips ...string) {
	t.Helper()
	ctx := context.Background()
	pod, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"dropped": "by the informer's transform"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/c"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setPodStatus(t, c, pod, phase, ips...)
}

func setPodStatus(t *testing.T, c kubernetes.Interface, pod *corev1.Pod, phase corev1.PodPhase, ips ...string) {
	t.Helper()
	pod.Status.Phase = phase
	pod.Status.PodIPs = nil
	for _, ip := range ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		pod.Status.PodIP = ips[0]
	}
	if _, err := c.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestNamespacesAndPodsFollowCommandFormat: while Raft commits in command
// format 1, a term replicates services but neither namespaces nor pods (no
// batch it commits fails to encode). Once the format carries them, it
// replicates every namespace and every pod that has not terminated, and
// marks them tracked only in the entry that completes them. Then it streams
// their changes: a new pod, a pod that terminates, a deleted pod.
func TestNamespacesAndPodsFollowCommandFormat(t *testing.T) {
	admin := adminClient(t)
	ns := createNamespace(t, admin, "pods")
	const pending = 10
	for i := range pending {
		runPod(t, admin, ns, fmt.Sprintf("p%d", i), corev1.PodPending, fmt.Sprintf("10.250.0.%d", i+1))
	}
	runPod(t, admin, ns, "no-ip", corev1.PodPending)
	runPod(t, admin, ns, "done", corev1.PodSucceeded, "10.250.1.1")

	store := openPodStore(t)
	raft := &formatRaft{store: store}
	raft.version.Store(int64(fsm.BaseCommandVersion))
	podTerm(t, store, raft, true)

	// Format 1: services only.
	if _, err := admin.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "marker"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the service in the view", waitTimeout, func() bool {
		return store.View().Service(fsm.ServiceKey{Namespace: ns, Name: "marker"}) != nil
	})
	if v := store.View(); v.HasNamespace(ns) || v.Pod(fsm.PodKey{Namespace: ns, Name: "p0"}) != nil || v.Tracked() != (fsm.Tracked{}) {
		t.Fatalf("format 1: namespaces or pods replicated (tracked %+v)", v.Tracked())
	}

	// Format 2: everything, tracked once complete.
	views, cancel := store.Subscribe()
	defer cancel()
	raft.version.Store(int64(fsm.PodsCommandVersion))
	wait.For(t, "namespaces and pods to be tracked", waitTimeout, func() bool {
		select {
		case <-views:
		case <-time.After(100 * time.Millisecond):
		}
		v := store.View()
		if v.Tracked() != (fsm.Tracked{Namespaces: true, Pods: true}) {
			return false
		}
		// The first View that says so already holds all of them.
		if !v.HasNamespace(ns) || !v.HasNamespace("default") || !v.HasNamespace("kube-system") {
			t.Fatalf("tracked before every namespace is in: %s %v", ns, v.HasNamespace(ns))
		}
		for i := range pending {
			p := v.Pod(fsm.PodKey{Namespace: ns, Name: fmt.Sprintf("p%d", i)})
			if want := netip.MustParseAddr(fmt.Sprintf("10.250.0.%d", i+1)); p == nil || len(p.IPs) != 1 || p.IPs[0] != want {
				t.Fatalf("tracked before pod p%d is in: %+v", i, p)
			}
		}
		return true
	})
	v := store.View()
	for _, name := range []string{"no-ip", "done"} {
		if v.Pod(fsm.PodKey{Namespace: ns, Name: name}) != nil {
			t.Errorf("pod %s replicated: it has no records", name)
		}
	}
	if v.HasPodAddr([]byte(ns), netip.MustParseAddr("10.250.1.1")) {
		t.Error("the address of a pod that has terminated is found")
	}

	// Streaming: a new dual-stack pod, one that terminates, one deleted.
	runPod(t, admin, ns, "new", corev1.PodRunning, "10.250.2.1", "fd00:250::1")
	pod, err := admin.CoreV1().Pods(ns).Get(context.Background(), "p1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setPodStatus(t, admin, pod, corev1.PodFailed, "10.250.0.2")
	zero := int64(0)
	if err := admin.CoreV1().Pods(ns).Delete(context.Background(), "p2", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the pod changes in the view", waitTimeout, func() bool {
		v := store.View()
		return v.HasPodAddr([]byte(ns), netip.MustParseAddr("fd00:250::1")) &&
			!v.HasPodAddr([]byte(ns), netip.MustParseAddr("10.250.0.2")) &&
			v.Pod(fsm.PodKey{Namespace: ns, Name: "p2"}) == nil
	})
	if n := raft.encodeErrors(); n != 0 {
		t.Errorf("%d batches did not encode in the format the committer wrote", n)
	}
}

// TestResyncDeletesNamespacesAndUntracksPods: a new leader's term repairs a
// View that holds namespaces and pods the API does not have (a namespace
// deleted while no leader watched). A term that does not watch pods (the
// leader is not in verified mode) untracks pods in the same entry as the
// first of their deletions, and deletes every pod; namespaces stay tracked.
func TestResyncDeletesNamespacesAndUntracksPods(t *testing.T) {
	admin := adminClient(t)
	ns := createNamespace(t, admin, "resync")
	runPod(t, admin, ns, "kept", corev1.PodRunning, "10.251.0.1")

	store := openPodStore(t)
	raft := &formatRaft{store: store}
	raft.version.Store(int64(fsm.PodsCommandVersion))
	// The state a previous leader in verified mode left.
	prev, err := fsm.EncodeVersion([]fsm.Command{
		fsm.UpsertNamespace("gone-ns"), fsm.UpsertNamespace(ns),
		fsm.UpsertPod(&fsm.Pod{Namespace: ns, Name: "kept", IPs: []netip.Addr{netip.MustParseAddr("10.251.0.1")}}),
		fsm.UpsertPod(&fsm.Pod{Namespace: "gone-ns", Name: "ghost", IPs: []netip.Addr{netip.MustParseAddr("10.251.0.2")}}),
		fsm.SetTracked(fsm.Tracked{Namespaces: true, Pods: true}),
	}, fsm.PodsCommandVersion)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ApplyEntries([]fsm.Entry{{Index: 1, Data: prev}}); err != nil {
		t.Fatal(err)
	}
	raft.index = 1

	podTerm(t, store, raft, false)
	wait.For(t, "the resync", waitTimeout, func() bool {
		v := store.View()
		_, pods := v.PodCounts()
		return !v.HasNamespace("gone-ns") && v.HasNamespace(ns) && pods == 0
	})
	if got := store.View().Tracked(); got != (fsm.Tracked{Namespaces: true}) {
		t.Errorf("tracked %+v, want namespaces only", got)
	}
	// In log order, and within an entry in apply order: no pod is deleted
	// while the View still vouches for all pods.
	raft.mu.Lock()
	defer raft.mu.Unlock()
	untracked := false
	for _, entry := range raft.entries {
		for _, c := range entry {
			switch {
			case c.Op == fsm.OpSetTracked && !c.Tracked.Pods:
				untracked = true
			case c.Op == fsm.OpDeletePod && !untracked:
				t.Fatalf("pod %s/%s deleted while pods are tracked: %v", c.Namespace, c.Name, raft.entries)
			}
		}
	}
}

// TestPodFrom: the translation of pods.
func TestPodFrom(t *testing.T) {
	mk := func(phase corev1.PodPhase, podIP string, ips ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: corev1.PodStatus{Phase: phase, PodIP: podIP}}
		for _, ip := range ips {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		return p
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string // nil: no record
	}{
		{"running dual-stack", mk(corev1.PodRunning, "10.0.0.1", "10.0.0.1", "fd00::1"), []string{"10.0.0.1", "fd00::1"}},
		{"pending with an address", mk(corev1.PodPending, "", "10.0.0.1"), []string{"10.0.0.1"}},
		{"unknown phase", mk(corev1.PodUnknown, "", "10.0.0.1"), []string{"10.0.0.1"}},
		{"podIP only", mk(corev1.PodRunning, "10.0.0.2"), []string{"10.0.0.2"}},
		{"mapped and duplicate", mk(corev1.PodRunning, "", "::ffff:10.0.0.3", "10.0.0.3"), []string{"10.0.0.3"}},
		{"succeeded", mk(corev1.PodSucceeded, "10.0.0.1", "10.0.0.1"), nil},
		{"failed", mk(corev1.PodFailed, "10.0.0.1", "10.0.0.1"), nil},
		{"no address", mk(corev1.PodPending, ""), nil},
		{"garbage address", mk(corev1.PodRunning, "", "not-an-ip"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PodFrom(tt.pod)
			if ok != (tt.want != nil) {
				t.Fatalf("ok %v, want %v", ok, tt.want != nil)
			}
			if !ok {
				return
			}
			if got.Namespace != "ns" || got.Name != "p" || fmt.Sprint(got.IPs) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %v", got, tt.want)
			}
		})
	}
}
