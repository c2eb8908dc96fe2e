package kubeclient_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kdnsd/kdnsd/internal/kubeclient"
	"github.com/kdnsd/kdnsd/test/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestClientReadsEachResource: against a real kube-apiserver, the Client
// lists each resource kdnsd reads into its typed list, watches it (the
// existing object comes as ADDED), and records an Event.
func TestClientReadsEachResource(t *testing.T) {
	env := testenv.Get(t)
	admin, err := kubernetes.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The content type of every answer, by request path.
	var answered sync.Map
	cfg := env.AdminConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil {
				answered.Store(req.Method+" "+req.URL.Path+"?watch="+req.URL.Query().Get("watch"), resp.Header.Get("Content-Type"))
			}
			return resp, err
		})
	}
	c, err := kubeclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const ns, name = "kubeclient-test", "one"
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: meta,
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 53}}}}, metav1.CreateOptions{}))
	must(admin.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: meta,
		AddressType: discoveryv1.AddressTypeIPv4}, metav1.CreateOptions{}))
	must(admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: meta,
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}, metav1.CreateOptions{}))
	must(admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta}, metav1.CreateOptions{}))
	labels := map[string]string{"app": "x"}
	must(admin.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}, metav1.CreateOptions{}))

	for _, tc := range []struct {
		r         *kubeclient.Resource
		namespace string
		name      string
		want      runtime.Object
	}{
		{kubeclient.Services, ns, name, &corev1.Service{}},
		{kubeclient.EndpointSlices, ns, name, &discoveryv1.EndpointSlice{}},
		{kubeclient.Namespaces, "", ns, &corev1.Namespace{}},
		{kubeclient.Pods, ns, name, &corev1.Pod{}},
		{kubeclient.ConfigMaps, ns, name, &corev1.ConfigMap{}},
		{kubeclient.StatefulSets, ns, name, &appsv1.StatefulSet{}},
	} {
		t.Run(tc.r.Name, func(t *testing.T) {
			opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", tc.name).String()}
			list, err := c.List(ctx, tc.r, tc.namespace, opts)
			if err != nil {
				t.Fatal(err)
			}
			items, err := apimeta.ExtractList(list)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 1 || mustAccessor(t, items[0]).GetName() != tc.name {
				t.Fatalf("List %s in %q: %d items, want %s", tc.r.Name, tc.namespace, len(items), tc.name)
			}
			if got, want := typeName(items[0]), typeName(tc.want); got != want {
				t.Errorf("List %s: item of type %s, want %s", tc.r.Name, got, want)
			}
			w, err := c.Watch(ctx, tc.r, tc.namespace, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Added || typeName(ev.Object) != typeName(tc.want) {
					t.Errorf("Watch %s: first event %s of %s, want ADDED of %s", tc.r.Name, ev.Type, typeName(ev.Object), typeName(tc.want))
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Watch %s: no event in 10 s", tc.r.Name)
			}
		})
	}

	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "kubeclient."},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: ns, Name: name},
		Reason:         "Tested", Message: "recorded by kubeclient", Type: corev1.EventTypeNormal}
	if err := c.CreateEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	// The events about the ConfigMap: the API server records its own about
	// the namespace's Service (its ClusterIP repair loop may warn of an
	// address it has not seen allocated yet).
	events, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=ConfigMap,involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || events.Items[0].Reason != "Tested" {
		t.Errorf("events about ConfigMap %s/%s after CreateEvent: %+v", ns, name, events.Items)
	}

	// Lists, watches and the Event are protobuf, which costs the API
	// server and kdnsd a fraction of JSON's time at 100k objects.
	requests := 0
	answered.Range(func(req, contentType any) bool {
		requests++
		if !strings.HasPrefix(contentType.(string), runtime.ContentTypeProtobuf) {
			t.Errorf("%s answered in %s, want %s", req, contentType, runtime.ContentTypeProtobuf)
		}
		return true
	})
	if requests < 2*6+1 {
		t.Errorf("saw %d distinct requests, want a list and a watch of each of 6 resources and an Event", requests)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestNewRefusesQPSWithoutBurst: a rate of requests needs a burst, as
// client-go's clientset says.
func TestNewRefusesQPSWithoutBurst(t *testing.T) {
	if _, err := kubeclient.New(&rest.Config{Host: "https://127.0.0.1:1", QPS: 20}); err == nil {
		t.Error("New with QPS 20 and no burst: no error")
	}
	if _, err := kubeclient.New(&rest.Config{Host: "https://127.0.0.1:1", QPS: 20, Burst: 50}); err != nil {
		t.Errorf("New with QPS 20, burst 50: %v", err)
	}
}

func mustAccessor(t *testing.T, obj runtime.Object) metav1.Object {
	t.Helper()
	m, err := apimeta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func typeName(obj runtime.Object) string { return fmt.Sprintf("%T", obj) }
