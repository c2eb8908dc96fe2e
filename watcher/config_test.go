package watcher

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

const configWait = 30 * time.Second

// configTerm runs a ConfigWatcher term against the real API server as the
// kdnsd identity (the shipped RBAC), for ConfigMap ns/kdnsd, until the test
// ends.
func configTerm(t *testing.T, store *fsm.Store, raft *formatRaft, ns string) *ConfigWatcher {
	t.Helper()
	client, err := kubeclient.New(testenv.Get(t).KdnsdConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConfigWatcher(ConfigWatcherConfig{Client: client, Namespace: ns, Name: "kdnsd", Zone: "cluster.local.",
		CommandVersion: func() int { return int(raft.version.Load()) }, Views: store, Raft: raft,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("ConfigWatcher.Run did not return after its context ended")
		}
	})
	return c
}

func events(t *testing.T, c kubernetes.Interface, ns, reason string) []corev1.Event {
	t.Helper()
	list, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("reason", reason).String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// TestConfigMapThroughRealAPIServer: a ConfigMap written through the real
// API server is committed as the View's configuration with its
// resourceVersion; an invalid change commits a refusal (the configuration in
// force stays), counts it once, and leaves a Warning Event on the ConfigMap
// with the reason; a record colliding with a Service is refused; a valid
// change clears the refusal; deleting the ConfigMap puts the flags back.
// The configuration waits for command format 2.
func TestConfigMapThroughRealAPIServer(t *testing.T) {
	admin := adminClient(t)
	store := openPodStore(t)
	raft := &formatRaft{store: store}
	raft.version.Store(1)
	ns := createNamespace(t, admin, "config")
	ctx := context.Background()
	cms := admin.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kdnsd"},
		Data: map[string]string{"ttl": "7", "records": "db.corp.example. A 10.1.2.3"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Another ConfigMap in the namespace is none of kdnsd's business (and
	// the shipped RBAC lets it read only ConfigMaps named kdnsd).
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"},
		Data: map[string]string{"ttl": "oops"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := configTerm(t, store, raft, ns)

	wait.For(t, "the term to wait for command format 2", configWait, func() bool {
		return strings.Contains(c.State(), "command format 2")
	})
	if st := store.View().Config(); st.Config != nil || st.Rejected != nil {
		t.Fatalf("committed in format 1: %+v", st)
	}
	raft.version.Store(2)
	wait.For(t, "the configuration to be committed", configWait, func() bool {
		cfg := store.View().Config().Config
		return cfg != nil && cfg.TTL == 7 && cfg.Source == ns+"/kdnsd@"+cm.ResourceVersion
	})
	good := store.View().Config()
	wait.For(t, "a ConfigCommitted Event", configWait, func() bool { return len(events(t, admin, ns, "ConfigCommitted")) == 1 })

	cm.Data = map[string]string{"ttl": "seven", "records": "db.corp.example. A 10.1.2.3"}
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the refusal to be committed", configWait, func() bool { return store.View().Config().Rejected != nil })
	st := store.View().Config()
	if st.Config != good.Config || st.Index != good.Index {
		t.Fatalf("the refusal changed the configuration in force: %+v, was %+v", st, good)
	}
	if want := `key "ttl": "seven": want seconds`; st.Rejected.Source != ns+"/kdnsd@"+cm.ResourceVersion ||
		!strings.Contains(st.Rejected.Error, want) {
		t.Fatalf("rejection %+v, want %q for this version", st.Rejected, want)
	}
	var warned []corev1.Event
	wait.For(t, "a Warning Event on the ConfigMap", configWait, func() bool {
		warned = events(t, admin, ns, "ConfigRejected")
		return len(warned) > 0
	})
	if e := warned[0]; e.Type != corev1.EventTypeWarning || e.InvolvedObject.Name != "kdnsd" ||
		e.InvolvedObject.UID != cm.UID || !strings.Contains(e.Message, "seven") {
		t.Fatalf("event %+v", e)
	}
	// Rechecks find the refusal already in the View: no second one (the
	// index below moves by the two entries this test commits, no more).
	refusedAt := store.View().Index()

	// A custom record on a Service's name is refused while it exists.
	if err := raft.Commit(ctx, []fsm.Command{fsm.UpsertService(&fsm.Service{Namespace: "default", Name: "web",
		Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.9")}})}); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"records": "web.default.svc.cluster.local. A 10.1.2.3"}
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the collision to be refused", configWait, func() bool {
		r := store.View().Config().Rejected
		return r != nil && strings.Contains(r.Error, "collides with Service default/web")
	})
	if c.Rejections() != 2 || store.View().Config().Config != good.Config || store.View().Index() != refusedAt+2 {
		t.Fatalf("rejections %d, config in force %+v, %d entries since the first refusal, want 2",
			c.Rejections(), store.View().Config().Config, store.View().Index()-refusedAt)
	}
	if n := len(events(t, admin, ns, "ConfigRejected")); n > 2 {
		t.Fatalf("%d ConfigRejected Events for 2 refusals", n)
	}

	cm.Data = map[string]string{"podMode": "disabled"}
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the new configuration, without refusal", configWait, func() bool {
		st := store.View().Config()
		return st.Rejected == nil && st.Config != nil && st.Config.PodMode == "disabled" && st.Config.TTL == 0
	})

	if err := cms.Delete(ctx, "kdnsd", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the flags to be back in force", configWait, func() bool {
		st := store.View().Config()
		return st.Config == nil && st.Index == store.View().Index()
	})
}
