package testenv

import (
	"context"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestShippedManifestsAreValid: the API server accepts every object of
// deploy/statefulset/kdnsd.yaml and networkpolicy.yaml (server-side dry run:
// full validation and admission, nothing stored). The Raft CA Secret that
// kustomization.yaml generates is made from files an operator creates.
func TestShippedManifestsAreValid(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var objs []manifestObject
	for _, file := range []string{"kdnsd.yaml", "networkpolicy.yaml"} {
		more, err := loadManifests(filepath.Join(root, "deploy", "statefulset", file))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, more...)
	}
	admin, _ := clients(t)
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	kinds := map[string]int{}
	for _, o := range objs {
		switch obj := o.obj.(type) {
		case *corev1.Service:
			_, err = admin.CoreV1().Services(obj.Namespace).Create(ctx, obj, dry)
		case *appsv1.StatefulSet:
			_, err = admin.AppsV1().StatefulSets(obj.Namespace).Create(ctx, obj, dry)
		case *policyv1.PodDisruptionBudget:
			_, err = admin.PolicyV1().PodDisruptionBudgets(obj.Namespace).Create(ctx, obj, dry)
		case *networkingv1.NetworkPolicy:
			_, err = admin.NetworkingV1().NetworkPolicies(obj.Namespace).Create(ctx, obj, dry)
		default:
			t.Fatalf("document %d: unexpected %T", o.doc, obj)
		}
		if err != nil {
			t.Errorf("document %d (%T): %v", o.doc, o.obj, err)
		}
		kinds[o.obj.GetObjectKind().GroupVersionKind().Kind]++
	}
	if kinds["Service"] != 2 || kinds["StatefulSet"] != 1 || kinds["PodDisruptionBudget"] != 1 || kinds["NetworkPolicy"] != 1 {
		t.Fatalf("objects: %v", kinds)
	}
}
