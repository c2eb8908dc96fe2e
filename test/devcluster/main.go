// Command devcluster is `make run`: a local kdnsd cluster on loopback. It
// starts a real etcd and kube-apiserver (test/testenv), loads a few sample
// services, starts three kdnsd replicas from the given binary, each on its
// own loopback address as pods of a StatefulSet are, with the admin API on
// (plain HTTP on loopback, a bearer token), prints the dig and kdnsd
// commands to try, and on Ctrl-C stops everything and removes its files.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/test/cluster"
	"github.com/kdnsd/kdnsd/test/testenv"
)

func main() {
	bin := flag.String("kdnsd", "bin/kdnsd", "kdnsd binary to run")
	replicas := flag.Int("replicas", 3, "number of replicas")
	upstream := flag.String("upstream", "127.0.0.1:1", "where names outside the cluster are forwarded (the default, a closed port, keeps the demo off the network)")
	flag.Parse()
	if err := run(*bin, *replicas, *upstream); err != nil {
		log.Fatal(err)
	}
}

func run(bin string, replicas int, upstream string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (run `make build`)", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("starting etcd and kube-apiserver …")
	env, err := testenv.Start(ctx)
	if err != nil {
		return err
	}
	defer env.Stop()
	cs, err := kubernetes.NewForConfig(env.AdminConfig())
	if err != nil {
		return err
	}
	if err := loadSamples(ctx, cs); err != nil {
		return fmt.Errorf("load sample services: %w", err)
	}
	dir, err := os.MkdirTemp("", "kdnsd-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Every replica serves the admin API on the same port of its own
	// address, so that a replica finds its peers' admin API (for `kdnsd
	// peers list`) as it does in a StatefulSet.
	c, err := cluster.NewOnHosts(bin, env.KdnsdKubeconfig, dir, replicas)
	if err != nil {
		return err
	}
	tokenFile, err := writeToken(dir)
	if err != nil {
		return err
	}
	c.Upstream = upstream
	c.AdminFlags = []string{"--admin-token-file", tokenFile}
	defer c.StopAll()
	if err := c.StartAll(); err != nil {
		return err
	}

	fmt.Printf("\nkdnsd: %d replicas on loopback, API server %s\n", replicas, env.Host)
	for _, r := range c.Replicas {
		fmt.Printf("  %s  dns %s  http http://%s/status  admin http://%s  log %s\n", r.ID, r.DNSAddr, r.HTTPAddr, r.AdminAddr, r.LogPath)
	}
	host, port, _ := strings.Cut(c.Replicas[0].DNSAddr, ":")
	fmt.Println("\nTry:")
	for _, q := range []string{
		"web.demo.svc.cluster.local A",
		"db.demo.svc.cluster.local A",
		"_http._tcp.web.demo.svc.cluster.local SRV",
		"missing.demo.svc.cluster.local A",
	} {
		fmt.Printf("  dig @%s -p %s %s\n", host, port, q)
	}
	fmt.Printf("  KUBECONFIG=%s kubectl create service clusterip new --tcp=80 -n demo\n", env.AdminKubeconfig)
	fmt.Println("\nThe admin API (any replica; a follower forwards changes to the leader):")
	fmt.Printf("  %s peers list --server http://%s --token-file %s\n", bin, c.Replicas[0].AdminAddr, tokenFile)
	for _, r := range c.Replicas {
		fmt.Printf("  %s status --server http://%s --token-file %s\n", bin, r.AdminAddr, tokenFile)
	}
	fmt.Printf("  KDNSD_DATA_DIR=%s %s peers list   (%s's admin socket, as kubectl exec uses in a pod)\n", c.Replicas[0].DataDir, bin, c.Replicas[0].ID)
	fmt.Println("\nCtrl-C stops everything.")

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nstopping …")
			return nil
		case <-tick.C:
			for _, r := range c.Replicas {
				if !r.Running() {
					return fmt.Errorf("%s exited; its log:\n%s", r.ID, r.LogTail(30))
				}
			}
		}
	}
}

// writeToken writes a random bearer token for the replicas' admin API to a
// file in dir, and returns the file's path.
func writeToken(dir string) (string, error) {
	path := filepath.Join(dir, "admin-token")
	return path, os.WriteFile(path, []byte(rand.Text()+"\n"), 0o600)
}

// loadSamples creates namespace demo with a ClusterIP service and a headless
// service with three ready endpoints.
func loadSamples(ctx context.Context, cs kubernetes.Interface) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	http := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Ports: http}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: http}},
	} {
		if _, err := cs.CoreV1().Services("demo").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	ready := true
	var eps []discoveryv1.Endpoint
	for i := 1; i <= 3; i++ {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.244.0.%d", 10+i)},
			Hostname:   new(fmt.Sprintf("db-%d", i-1)),
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		})
	}
	_, err := cs.DiscoveryV1().EndpointSlices("demo").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(8080))}},
	}, metav1.CreateOptions{})
	return err
}
