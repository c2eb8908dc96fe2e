package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/testenv"
)

const zone = "cluster.local."

// namespaces the dataset's services are spread over.
const namespaces = 20

// firstRangeServices is how many ClusterIPs the dataset takes from testenv's
// service range (a /16); the rest come from extraServiceCIDR.
const firstRangeServices = 65000

// extraServiceCIDR is the ServiceCIDR the API server is given for datasets
// larger than its own /16 (100k services).
var extraServiceCIDR = netip.MustParsePrefix("10.100.0.0/14")

// addrAt returns the IPv4 address n places after base.
func addrAt(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], binary.BigEndian.Uint32(b[:])+uint32(n))
	return netip.AddrFrom4(out)
}

// clusterIP is service i's address: inside testenv's service range for the
// first firstRangeServices, in extraServiceCIDR after that.
func clusterIP(i int) netip.Addr {
	if i < firstRangeServices {
		return addrAt(netip.MustParsePrefix(testenv.ServiceCIDRv4).Addr(), 10+i)
	}
	return addrAt(extraServiceCIDR.Addr(), 1+i-firstRangeServices)
}

// dataset makes the record set: ClusterIP services with one slice of three
// ready endpoints, and headless services whose endpoints have hostnames.
func dataset(nServices, nHeadless int) ([]*fsm.Service, []*fsm.EndpointSlice) {
	var services []*fsm.Service
	var slices []*fsm.EndpointSlice
	port := []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}
	podNet := netip.MustParseAddr("10.128.0.0")
	for i := range nServices + nHeadless {
		ns := fmt.Sprintf("ns%d", i%namespaces)
		name := fmt.Sprintf("svc%d", i)
		svc := &fsm.Service{Namespace: ns, Name: name, Type: fsm.TypeClusterIP, Ports: port}
		headless := i >= nServices
		if headless {
			svc.Name = fmt.Sprintf("hl%d", i)
			svc.Headless = true
		} else {
			svc.ClusterIPs = []netip.Addr{clusterIP(i)}
		}
		sl := &fsm.EndpointSlice{Namespace: ns, Name: svc.Name + "-x", Service: svc.Name, Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}}}
		for e := range 3 {
			ep := fsm.Endpoint{Addresses: []netip.Addr{addrAt(podNet, i*4+e)}, Ready: true}
			if headless {
				ep.Hostname = fmt.Sprintf("h%d", e)
			}
			sl.Endpoints = append(sl.Endpoints, ep)
		}
		services = append(services, svc)
		slices = append(slices, sl)
	}
	return services, slices
}

func fqdn(s *fsm.Service) string { return s.Name + "." + s.Namespace + ".svc." + zone }

// startAPI starts etcd and kube-apiserver (the caller stops them) and
// creates services and slices, through the API or into etcd as load says
// (etcdLoad); took is how long the creation took.
func startAPI(ctx context.Context, load string, services []*fsm.Service, slices []*fsm.EndpointSlice) (env *testenv.Env, cs kubernetes.Interface, took time.Duration, err error) {
	logf("starting etcd and kube-apiserver")
	if env, err = testenv.Start(ctx); err != nil {
		return nil, nil, 0, err
	}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()
	if cs, err = kubernetes.NewForConfig(env.AdminConfig()); err != nil {
		return nil, nil, 0, err
	}
	began := time.Now()
	if err = loadDataset(ctx, cs, load, env.EtcdURL, services, slices); err != nil {
		return nil, nil, 0, err
	}
	return env, cs, time.Since(began), nil
}

// loadVia resolves -load: auto writes into etcd a dataset of more than
// etcdLoadAbove ClusterIP services, and creates any other through the API.
func loadVia(load string, clusterIPServices int) (string, error) {
	switch load {
	case "api", "etcd":
		return load, nil
	case "auto":
		if clusterIPServices > etcdLoadAbove {
			return "etcd", nil
		}
		return "api", nil
	}
	return "", fmt.Errorf("-load %q: want auto, api or etcd", load)
}

// loadDataset creates the dataset's namespaces and the ServiceCIDR the
// ClusterIPs need beyond testenv's range through the API, then its services
// and slices: with load "etcd" written into etcd (etcdLoad) until the API
// server's cache holds them all, else through the API, with a few writers
// in parallel.
func loadDataset(ctx context.Context, cs kubernetes.Interface, load, etcdURL string, services []*fsm.Service, slices []*fsm.EndpointSlice) error {
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns%d", i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if len(services) > firstRangeServices {
		cidr := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "dnsbench"},
			Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{extraServiceCIDR.String()}}}
		if _, err := cs.NetworkingV1().ServiceCIDRs().Create(ctx, cidr, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if load == "etcd" {
		if err := etcdLoad(ctx, etcdURL, services, slices); err != nil {
			return err
		}
		return waitCached(ctx, cs, len(services), len(slices))
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range services {
		if ctx.Err() != nil {
			break // a creation failed: g.Wait says which
		}
		g.Go(func() error { return createService(ctx, cs, services[i], slices[i]) })
	}
	return g.Wait()
}

// createService creates a service and then its slice, as a controller does.
func createService(ctx context.Context, cs kubernetes.Interface, s *fsm.Service, sl *fsm.EndpointSlice) error {
	if _, err := cs.CoreV1().Services(s.Namespace).Create(ctx, cluster.APIService(s), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service %s/%s: %w", s.Namespace, s.Name, err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(sl.Namespace).Create(ctx, cluster.APISlice(sl), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create slice %s/%s: %w", sl.Namespace, sl.Name, err)
	}
	return nil
}

// writeZone writes the records the DNS servers fed by the API serve for the
// dataset as a zone file, for NSD and the map server.
func writeZone(path string, services []*fsm.Service, slices []*fsm.EndpointSlice) error {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 30\n%s IN SOA ns.dns.%s hostmaster.%s 1 7200 1800 86400 30\n%s IN NS ns.dns.%s\nns.dns.%s IN A 10.96.0.10\n", zone, zone, zone, zone, zone, zone)
	for i, s := range services {
		sl := slices[i]
		if !s.Headless {
			fmt.Fprintf(&b, "%s IN A %s\n_http._tcp.%s IN SRV 0 100 80 %s\n", fqdn(s), s.ClusterIPs[0], fqdn(s), fqdn(s))
			continue
		}
		for _, ep := range sl.Endpoints {
			host := ep.Hostname + "." + fqdn(s)
			fmt.Fprintf(&b, "%s IN A %s\n%s IN A %s\n_http._tcp.%s IN SRV 0 33 8080 %s\n", fqdn(s), ep.Addresses[0], host, ep.Addresses[0], fqdn(s), host)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeQueries writes dnsperf's input: 60% ClusterIP A, 20% headless A, 10%
// SRV, 5% AAAA (no data) and 5% names that do not exist.
func writeQueries(path string, services []*fsm.Service) error {
	rng := rand.New(rand.NewPCG(1, 2))
	var clusterIP, headless []*fsm.Service
	for _, s := range services {
		if s.Headless {
			headless = append(headless, s)
		} else {
			clusterIP = append(clusterIP, s)
		}
	}
	var b strings.Builder
	for range 20000 {
		switch p := rng.IntN(100); {
		case p < 60:
			fmt.Fprintf(&b, "%s A\n", fqdn(clusterIP[rng.IntN(len(clusterIP))]))
		case p < 80:
			fmt.Fprintf(&b, "%s A\n", fqdn(headless[rng.IntN(len(headless))]))
		case p < 90:
			fmt.Fprintf(&b, "_http._tcp.%s SRV\n", fqdn(clusterIP[rng.IntN(len(clusterIP))]))
		case p < 95:
			fmt.Fprintf(&b, "%s AAAA\n", fqdn(clusterIP[rng.IntN(len(clusterIP))]))
		default:
			fmt.Fprintf(&b, "missing%d.ns1.svc.%s A\n", rng.IntN(1000), zone)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
