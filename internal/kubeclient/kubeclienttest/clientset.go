// Package kubeclienttest adapts a client-go clientset to kubeclient.Client,
// for unit tests that feed kdnsd's informers from client-go's fake
// clientset. kdnsd itself does not link the clientset (see kubeclient), and
// tests against a real API server use kubeclient.New.
package kubeclienttest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/internal/kubeclient"
)

// FromClientset returns cs as a kubeclient.Client.
func FromClientset(cs kubernetes.Interface) kubeclient.Client { return clientset{cs} }

type clientset struct{ cs kubernetes.Interface }

func (c clientset) List(ctx context.Context, r *kubeclient.Resource, ns string, opts metav1.ListOptions) (runtime.Object, error) {
	switch r {
	case kubeclient.Services:
		return list(c.cs.CoreV1().Services(ns).List(ctx, opts))
	case kubeclient.EndpointSlices:
		return list(c.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, opts))
	case kubeclient.Namespaces:
		return list(c.cs.CoreV1().Namespaces().List(ctx, opts))
	case kubeclient.Pods:
		return list(c.cs.CoreV1().Pods(ns).List(ctx, opts))
	case kubeclient.ConfigMaps:
		return list(c.cs.CoreV1().ConfigMaps(ns).List(ctx, opts))
	case kubeclient.StatefulSets:
		return list(c.cs.AppsV1().StatefulSets(ns).List(ctx, opts))
	}
	return nil, fmt.Errorf("kubeclienttest: cannot list %s", r.Name)
}

func (c clientset) Watch(ctx context.Context, r *kubeclient.Resource, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	switch r {
	case kubeclient.Services:
		return c.cs.CoreV1().Services(ns).Watch(ctx, opts)
	case kubeclient.EndpointSlices:
		return c.cs.DiscoveryV1().EndpointSlices(ns).Watch(ctx, opts)
	case kubeclient.Namespaces:
		return c.cs.CoreV1().Namespaces().Watch(ctx, opts)
	case kubeclient.Pods:
		return c.cs.CoreV1().Pods(ns).Watch(ctx, opts)
	case kubeclient.ConfigMaps:
		return c.cs.CoreV1().ConfigMaps(ns).Watch(ctx, opts)
	case kubeclient.StatefulSets:
		return c.cs.AppsV1().StatefulSets(ns).Watch(ctx, opts)
	}
	return nil, fmt.Errorf("kubeclienttest: cannot watch %s", r.Name)
}

func (c clientset) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	_, err := c.cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	return err
}

// list returns a typed client's list as a runtime.Object, and nil (not a
// nil pointer of the list's type) with an error.
func list[L runtime.Object](l L, err error) (runtime.Object, error) {
	if err != nil {
		return nil, err
	}
	return l, nil
}
