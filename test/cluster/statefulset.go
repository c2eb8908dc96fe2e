package cluster

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// StatefulSet stands in for kdnsd's StatefulSet in the API, for replicas
// run with Kubernetes discovery (Cluster.Namespace): the StatefulSet
// object and its pods, with IPs in their status. No controller or kubelet
// runs; the test plays both.
type StatefulSet struct {
	t  testing.TB
	cs kubernetes.Interface
	// Namespace is where the StatefulSet and its pods are: the replicas'
	// Cluster.Namespace.
	Namespace string
}

// NewStatefulSet creates StatefulSet "kdnsd" with the given replicas in ns.
func NewStatefulSet(t testing.TB, cs kubernetes.Interface, ns string, replicas int32) *StatefulSet {
	t.Helper()
	s := &StatefulSet{t: t, cs: cs, Namespace: ns}
	labels := map[string]string{"app.kubernetes.io/name": "kdnsd-test"}
	_, err := cs.AppsV1().StatefulSets(ns).Create(context.Background(), &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kdnsd"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "kdnsd-peers",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:dev"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Scale sets the StatefulSet's spec.replicas, as kubectl scale does.
func (s *StatefulSet) Scale(replicas int32) {
	s.t.Helper()
	ctx := context.Background()
	sts, err := s.cs.AppsV1().StatefulSets(s.Namespace).Get(ctx, "kdnsd", metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	sts.Spec.Replicas = &replicas
	if _, err := s.cs.AppsV1().StatefulSets(s.Namespace).Update(ctx, sts, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// RunPod creates the replica's pod with the replica's IP in its status.
func (s *StatefulSet) RunPod(r *Replica) {
	s.t.Helper()
	ctx := context.Background()
	pod, err := s.cs.CoreV1().Pods(s.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: r.ID, Labels: map[string]string{"app.kubernetes.io/name": "kdnsd-test"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:dev"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = r.Host()
	pod.Status.PodIPs = []corev1.PodIP{{IP: r.Host()}}
	if _, err := s.cs.CoreV1().Pods(s.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// DeletePod deletes the replica's pod at once.
func (s *StatefulSet) DeletePod(r *Replica) {
	s.t.Helper()
	zero := int64(0)
	err := s.cs.CoreV1().Pods(s.Namespace).Delete(context.Background(), r.ID, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil {
		s.t.Fatal(err)
	}
}
