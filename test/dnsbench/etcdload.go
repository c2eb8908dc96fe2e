package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/wait"
)

// Loading a large set of ClusterIP services through the API is slow for a
// reason of the API server's own: with the IPAddress allocator (GA and
// locked on since Kubernetes 1.35) every ClusterIP allocation updates the
// allocator's metrics, which list every IPAddress object twice
// (ipallocator.Allocator.Used and Free), so creating n services costs
// O(n²). By 38k services kube-apiserver created ~24 a second with both
// cores busy, and 100k would have taken over an hour.
//
// etcdLoad writes such a set where the API server keeps it instead: the
// services, their slices and the IPAddress objects the allocator would
// have made, as JSON (the API server's storage decodes JSON as well as its
// own protobuf), under its storage keys, many objects to a transaction
// through etcd's JSON gateway. The API server's watch of etcd hands them
// to its cache and its watchers as if they had been created through it;
// what kdnsd and CoreDNS read is the same. Namespaces and the extra
// ServiceCIDR are still created through the API.

// etcdLoadAbove is how many ClusterIP services a dataset has at most for
// -load auto to create it through the API.
const etcdLoadAbove = 20000

// etcdTxnOps is how many puts a transaction holds: etcd's default
// --max-txn-ops.
const etcdTxnOps = 128

// storageKey is where kube-apiserver keeps an object (its default
// --etcd-prefix; Services are kept under services/specs).
func storageKey(resource, namespace, name string) string {
	if namespace == "" {
		return "/registry/" + resource + "/" + name
	}
	return "/registry/" + resource + "/" + namespace + "/" + name
}

// etcdObject is one object to write.
type etcdObject struct {
	key   string
	value []byte
}

// storedService is s as the API server stores a created Service, with the
// fields it sets; it fills in the spec's defaults when it reads it back.
func storedService(s *fsm.Service) *corev1.Service {
	svc := cluster.APIService(s)
	svc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	svc.UID = uuid.NewUUID()
	svc.CreationTimestamp = metav1.Now()
	return svc
}

// storedSlice is sl as the API server stores a created EndpointSlice.
func storedSlice(sl *fsm.EndpointSlice) *discoveryv1.EndpointSlice {
	es := cluster.APISlice(sl)
	es.TypeMeta = metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"}
	es.UID = uuid.NewUUID()
	es.CreationTimestamp = metav1.Now()
	es.Generation = 1
	return es
}

// storedIPAddress is the IPAddress object the allocator makes for a
// service's ClusterIP.
func storedIPAddress(svc *corev1.Service, ip string, family corev1.IPFamily) *networkingv1.IPAddress {
	return &networkingv1.IPAddress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "IPAddress"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              ip,
			UID:               uuid.NewUUID(),
			CreationTimestamp: metav1.Now(),
			Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: string(family),
				networkingv1.LabelManagedBy:       "ipallocator.k8s.io",
			},
		},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Resource: "services", Namespace: svc.Namespace, Name: svc.Name,
		}},
	}
}

// serviceObjects returns what the API server keeps for a service and its
// slice: the Service, its ClusterIPs' IPAddresses and the EndpointSlice.
func serviceObjects(s *fsm.Service, sl *fsm.EndpointSlice) ([]etcdObject, error) {
	svc := storedService(s)
	var objs []etcdObject
	add := func(key string, obj any) error {
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		objs = append(objs, etcdObject{key, b})
		return nil
	}
	if err := add(storageKey("services/specs", svc.Namespace, svc.Name), svc); err != nil {
		return nil, err
	}
	for i, ip := range svc.Spec.ClusterIPs {
		if err := add(storageKey("ipaddresses", "", ip), storedIPAddress(svc, ip, svc.Spec.IPFamilies[i])); err != nil {
			return nil, err
		}
	}
	es := storedSlice(sl)
	if err := add(storageKey("endpointslices", es.Namespace, es.Name), es); err != nil {
		return nil, err
	}
	return objs, nil
}

// etcdLoad writes the services and slices to the etcd at etcdURL, with a
// few writers in parallel. A key that exists already fails the load: the
// set is written once, into an API server's fresh etcd.
func etcdLoad(ctx context.Context, etcdURL string, services []*fsm.Service, slices []*fsm.EndpointSlice) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	write := func(batch []etcdObject) {
		g.Go(func() error { return etcdCreate(ctx, etcdURL, batch) })
	}
	var batch []etcdObject
	for i, s := range services {
		if ctx.Err() != nil {
			break // a write failed: g.Wait says which
		}
		objs, err := serviceObjects(s, slices[i])
		if err != nil {
			g.Wait()
			return err
		}
		if len(batch)+len(objs) > etcdTxnOps {
			write(batch)
			batch = nil
		}
		batch = append(batch, objs...)
	}
	if len(batch) > 0 && ctx.Err() == nil {
		write(batch)
	}
	return g.Wait()
}

// etcdTxn is the JSON form of an etcd transaction (etcdserverpb.TxnRequest;
// bytes are base64, as encoding/json writes a []byte).
type etcdTxn struct {
	Compare []etcdCompare `json:"compare"`
	Success []etcdRequest `json:"success"`
}

type etcdCompare struct {
	Key            []byte `json:"key"`
	Target         string `json:"target"`
	Result         string `json:"result"`
	CreateRevision string `json:"create_revision"`
}

type etcdRequest struct {
	RequestPut etcdPut `json:"request_put"`
}

type etcdPut struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

// etcdCreate puts objs in one transaction if none of their keys exists.
func etcdCreate(ctx context.Context, etcdURL string, objs []etcdObject) error {
	var txn etcdTxn
	for _, o := range objs {
		txn.Compare = append(txn.Compare, etcdCompare{Key: []byte(o.key), Target: "CREATE", Result: "EQUAL", CreateRevision: "0"})
		txn.Success = append(txn.Success, etcdRequest{etcdPut{Key: []byte(o.key), Value: o.value}})
	}
	body, err := json.Marshal(txn)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, etcdURL+"/v3/kv/txn", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd transaction: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("etcd transaction: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd transaction: %s: %.300s", resp.Status, out)
	}
	var result struct {
		Succeeded bool `json:"succeeded"`
	}
	if err := json.Unmarshal(out, &result); err != nil {
		return fmt.Errorf("etcd transaction: %w: %.300s", err, out)
	}
	if !result.Succeeded {
		return fmt.Errorf("etcd transaction: a key of %s… exists already", objs[0].key)
	}
	return nil
}

// waitCached waits until the API server's cache (a list at resourceVersion
// 0, as informers make theirs) holds services Services and slices
// EndpointSlices besides the default namespace's: the servers fed by the
// API must not start from a cache still catching up with etcd. Each check
// lists the whole set, which takes seconds at 100k.
func waitCached(ctx context.Context, cs kubernetes.Interface, services, slices int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	outsideDefault := metav1.ListOptions{ResourceVersion: "0", FieldSelector: "metadata.namespace!=default"}
	var gotServices, gotSlices int
	err := wait.UntilEvery(ctx, time.Second, "the API server's cache to hold the set written into etcd", func() (bool, error) {
		svcs, err := cs.CoreV1().Services("").List(ctx, outsideDefault)
		if err != nil {
			return false, fmt.Errorf("list what the API server holds: %w", err)
		}
		sls, err := cs.DiscoveryV1().EndpointSlices("").List(ctx, outsideDefault)
		if err != nil {
			return false, fmt.Errorf("list what the API server holds: %w", err)
		}
		gotServices, gotSlices = len(svcs.Items), len(sls.Items)
		return gotServices == services && gotSlices == slices, nil
	})
	if err != nil {
		return fmt.Errorf("%w (it held %d services and %d slices of %d and %d)", err, gotServices, gotSlices, services, slices)
	}
	return nil
}

// loadedHow says how a dataset was created, for the reports.
func loadedHow(load string) string {
	if load == "etcd" {
		return "written into the API server's etcd"
	}
	return "through the API"
}
