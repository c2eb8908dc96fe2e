package main

import (
	"context"
	"net/netip"
	"reflect"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/test/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestEtcdLoadReadsAsCreated writes services into the API server's etcd
// and reads them back through the API beside the same services created
// through it: a reader of the API (kdnsd, CoreDNS) must not tell them
// apart, and the ClusterIP allocator must hold their addresses as its own.
func TestEtcdLoadReadsAsCreated(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	created, createdSlices := dataset(2, 1)
	if err := loadDataset(ctx, cs, "api", env.EtcdURL, created, createdSlices); err != nil {
		t.Fatal(err)
	}
	// The same services under other names and ClusterIPs.
	written, writtenSlices := dataset(2, 1)
	for i, s := range written {
		s.Name = "etcd-" + s.Name
		if !s.Headless {
			s.ClusterIPs = []netip.Addr{clusterIP(100 + i)}
		}
		writtenSlices[i].Service = s.Name
		writtenSlices[i].Name = s.Name + "-x"
	}
	if err := etcdLoad(ctx, env.EtcdURL, written, writtenSlices); err != nil {
		t.Fatal(err)
	}
	if err := waitCached(ctx, cs, len(created)+len(written), len(createdSlices)+len(writtenSlices)); err != nil {
		t.Fatal(err)
	}
	// Writing the same keys again is refused: nothing is overwritten.
	if err := etcdLoad(ctx, env.EtcdURL, written[:1], writtenSlices[:1]); err == nil {
		t.Error("a second etcdLoad of the same service succeeded")
	}

	for i, c := range created {
		w := written[i]
		gotSvc, err := cs.CoreV1().Services(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantSvc, err := cs.CoreV1().Services(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Headless {
			// Each has its own address; the rest of the spec is the same.
			if got, want := gotSvc.Spec.ClusterIP, w.ClusterIPs[0].String(); got != want {
				t.Errorf("%s: ClusterIP %s, want %s", w.Name, got, want)
			}
			gotSvc.Spec.ClusterIP, gotSvc.Spec.ClusterIPs = wantSvc.Spec.ClusterIP, wantSvc.Spec.ClusterIPs
		}
		if !reflect.DeepEqual(wantSvc.Spec, gotSvc.Spec) {
			t.Errorf("service %s read through the API differs from %s created through it:\ncreated: %+v\nwritten: %+v", w.Name, c.Name, wantSvc.Spec, gotSvc.Spec)
		}
		if gotSvc.UID == "" || gotSvc.CreationTimestamp.IsZero() || gotSvc.ResourceVersion == "" {
			t.Errorf("service %s has no UID, creation time or resource version: %+v", w.Name, gotSvc.ObjectMeta)
		}

		gotSlice, err := cs.DiscoveryV1().EndpointSlices(w.Namespace).Get(ctx, writtenSlices[i].Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantSlice, err := cs.DiscoveryV1().EndpointSlices(c.Namespace).Get(ctx, createdSlices[i].Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := gotSlice.Labels[discoveryv1.LabelServiceName], w.Name; got != want {
			t.Errorf("slice %s: service label %q, want %q", gotSlice.Name, got, want)
		}
		if !reflect.DeepEqual(wantSlice.Endpoints, gotSlice.Endpoints) {
			t.Errorf("slice %s: endpoints differ from %s's:\ncreated: %+v\nwritten: %+v", gotSlice.Name, wantSlice.Name, wantSlice.Endpoints, gotSlice.Endpoints)
		}
		if !reflect.DeepEqual(wantSlice.Ports, gotSlice.Ports) {
			t.Errorf("slice %s: ports differ from %s's:\ncreated: %+v\nwritten: %+v", gotSlice.Name, wantSlice.Name, wantSlice.Ports, gotSlice.Ports)
		}
		if gotSlice.AddressType != wantSlice.AddressType {
			t.Errorf("slice %s: address type %s, want %s", gotSlice.Name, gotSlice.AddressType, wantSlice.AddressType)
		}

		if c.Headless {
			continue
		}
		wantIP, err := cs.NetworkingV1().IPAddresses().Get(ctx, wantSvc.Spec.ClusterIP, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the allocator's IPAddress of %s: %v", c.Name, err)
		}
		gotIP, err := cs.NetworkingV1().IPAddresses().Get(ctx, w.ClusterIPs[0].String(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the IPAddress written for %s: %v", w.Name, err)
		}
		// Written in one transaction with its service, it has the
		// service's resource version unless the allocator's repair loop
		// replaced it (as it does one it does not take for its own).
		if gotIP.ResourceVersion != gotSvc.ResourceVersion {
			t.Errorf("IPAddress %s was rewritten after the load (resource version %s, its service's %s): %+v", gotIP.Name, gotIP.ResourceVersion, gotSvc.ResourceVersion, gotIP)
		}
		if !reflect.DeepEqual(wantIP.Labels, gotIP.Labels) {
			t.Errorf("IPAddress %s: labels differ from the allocator's:\nallocator: %+v\nwritten: %+v", gotIP.Name, wantIP.Labels, gotIP.Labels)
		}
		wantRef := *wantIP.Spec.ParentRef
		wantRef.Name = w.Name
		if !reflect.DeepEqual(&wantRef, gotIP.Spec.ParentRef) {
			t.Errorf("IPAddress %s: parent differs from the allocator's:\nallocator: %+v\nwritten: %+v", gotIP.Name, &wantRef, gotIP.Spec.ParentRef)
		}
	}
}
