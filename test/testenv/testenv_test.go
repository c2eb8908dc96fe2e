package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kdnsd/kdnsd/test/wait"
)

// crashChildEnv marks the child process of TestCrashLeavesNothing.
const crashChildEnv = "KDNSD_TESTENV_CRASH_CHILD"

func TestMain(m *testing.M) { Main(m) }

func clients(t *testing.T) (admin, kdnsd kubernetes.Interface) {
	t.Helper()
	admin, kdnsd, err := Get(t).newClients()
	if err != nil {
		t.Fatal(err)
	}
	return admin, kdnsd
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createNamespace(t *testing.T, ctx context.Context, admin kubernetes.Interface) string {
	t.Helper()
	ns, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "testenv-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestInformerSeesServiceAndEndpointSlice writes a Service and an
// EndpointSlice as admin and reads them back through the kdnsd identity's
// informers, as kdnsd's watcher will.
func TestInformerSeesServiceAndEndpointSlice(t *testing.T) {
	ctx := testContext(t)
	admin, kdnsd := clients(t)
	ns := createNamespace(t, ctx, admin)

	factory := informers.NewSharedInformerFactoryWithOptions(kdnsd, 0, informers.WithNamespace(ns))
	services := factory.Core().V1().Services()
	slices := factory.Discovery().V1().EndpointSlices()
	services.Informer()
	slices.Informer()
	factory.Start(ctx.Done())
	t.Cleanup(factory.Shutdown)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}

	svc, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			IPFamilyPolicy: new(corev1.IPFamilyPolicyRequireDualStack),
			Selector:       map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Errorf("dual-stack Service got ClusterIPs %v, want one IPv4 and one IPv6", svc.Spec.ClusterIPs)
	}
	_, err = admin.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "web-abc12",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.244.0.7"},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
			Hostname:   new("web-0"),
		}},
		Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080)), Protocol: new(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	err = wait.Until(ctx, "the informers to see the Service and the EndpointSlice", func() (bool, error) {
		s, err := services.Lister().Services(ns).Get("web")
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		es, err := slices.Lister().EndpointSlices(ns).Get("web-abc12")
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if s.Spec.ClusterIP != svc.Spec.ClusterIP {
			return false, fmt.Errorf("informer has ClusterIP %q, created %q", s.Spec.ClusterIP, svc.Spec.ClusterIP)
		}
		if got := es.Endpoints[0].Addresses; len(got) != 1 || got[0] != "10.244.0.7" {
			return false, fmt.Errorf("informer has endpoint addresses %v", got)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKdnsdIsLeastPrivilege checks that the kdnsd identity has the shipped
// read rights and nothing more.
func TestKdnsdIsLeastPrivilege(t *testing.T) {
	ctx := testContext(t)
	_, kdnsd := clients(t)

	list, err := kdnsd.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("kdnsd cannot list services: %v", err)
	}
	if _, err := kdnsd.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("kdnsd cannot list endpointslices: %v", err)
	}
	if _, err := kdnsd.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("kdnsd cannot list pods: %v", err)
	}
	// Watch from the list's revision, as informers do. (A watch without a
	// resourceVersion waits up to a second for the watch cache: see the
	// etcd flags in Start.)
	w, err := kdnsd.CoreV1().Services("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Errorf("kdnsd cannot watch services: %v", err)
	} else {
		w.Stop()
	}

	_, err = kdnsd.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "not-allowed"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 53}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("kdnsd creating a Service: got %v, want Forbidden", err)
	}
	err = kdnsd.DiscoveryV1().EndpointSlices("default").Delete(ctx, "kubernetes", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("kdnsd deleting an EndpointSlice: got %v, want Forbidden", err)
	}
	if _, err := kdnsd.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("kdnsd listing secrets: got %v, want Forbidden", err)
	}
}

// TestKubeconfigs checks the kubeconfig files work as written.
func TestKubeconfigs(t *testing.T) {
	ctx := testContext(t)
	env := Get(t)
	for path, wantUser := range map[string]string{env.AdminKubeconfig: AdminUser, env.KdnsdKubeconfig: KdnsdUser} {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		}
		if got := review.Status.UserInfo.Username; got != wantUser {
			t.Errorf("%s authenticates as %q, want %q", filepath.Base(path), got, wantUser)
		}
	}
}

// TestPodsAreAccepted checks that a Pod can be created without a
// controller-manager (no default ServiceAccount exists).
func TestPodsAreAccepted(t *testing.T) {
	ctx := testContext(t)
	admin, _ := clients(t)
	ns := createNamespace(t, ctx, admin)
	pod, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kdnsd-0", Labels: map[string]string{"app.kubernetes.io/name": "kdnsd"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "kdnsd", Image: "kdnsd:test"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Status is writable by the admin: tests can fake a scheduled, running pod.
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.9"}}
	pod.Status.PodIP = "10.244.0.9"
	if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBinaryMissingSaysHowToBuild(t *testing.T) {
	t.Setenv(EnvKubeAPIServer, "")
	t.Setenv(EnvCacheDir, t.TempDir())
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), "make testenv") {
		t.Fatalf("Binary() with no build: got %v, want an error that says to run make testenv", err)
	}
}

// TestAPIServerRestartAndStop starts a second Env, takes its API server down
// and up again (objects and credentials survive), and checks that Stop then
// removes its directory and ends its processes.
func TestAPIServerRestartAndStop(t *testing.T) {
	t.Parallel()
	e, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() }) // if the test fails before its own Stop
	t.Logf("second Env started in %v", e.StartupTime)
	ctx := testContext(t)
	admin, err := kubernetes.NewForConfig(e.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	kdnsd, err := kubernetes.NewForConfig(e.KdnsdConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	before := e.Pids()
	if err := e.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if got := e.Pids(); len(got) != 1 || got[0] != before[0] {
		t.Fatalf("after StopAPIServer: pids %v, want only etcd's %d", got, before[0])
	}
	checkGone(t, "", before[1:])
	if _, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{}); err == nil {
		t.Fatal("the API server answered while stopped")
	}
	began := time.Now()
	if err := e.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server restarted in %v", time.Since(began))
	if _, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if _, err := kdnsd.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("kdnsd after restart: %v", err)
	}

	pids := append(e.Pids(), e.reaper.cmd.Process.Pid)
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, e.Dir, pids)
	if err := e.StartAPIServer(ctx); err == nil {
		t.Error("StartAPIServer after Stop succeeded")
	}
}

// TestCrashLeavesNothing runs this test binary again, whose copy of this test
// panics while its package Env runs, and checks that the Env's directory and
// processes go away all the same.
func TestCrashLeavesNothing(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		env := Get(t)
		fmt.Printf("DIR=%s\nPIDS=%s\n", env.Dir, strings.Trim(fmt.Sprint(env.Pids()), "[]"))
		panic("testenv: deliberate panic in the crash child")
	}
	t.Parallel()
	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashLeavesNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the crash child did not fail:\n%s", out)
	}
	var dir string
	var pids []int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "DIR="); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(line, "PIDS="); ok {
			for _, f := range strings.Fields(v) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, pid)
			}
		}
	}
	if dir == "" || len(pids) != 2 {
		t.Fatalf("the crash child did not report its Env:\n%s", out)
	}
	if !strings.Contains(string(out), "deliberate panic") {
		t.Fatalf("the crash child did not panic:\n%s", out)
	}
	checkGone(t, dir, pids)
}

// checkGone waits until dir (unless "") does not exist and no pid is alive.
func checkGone(t *testing.T, dir string, pids []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := wait.Until(ctx, "the Env's directory and processes to go away", func() (bool, error) {
		if _, err := os.Stat(dir); dir != "" && !os.IsNotExist(err) {
			return false, nil
		}
		for _, pid := range pids {
			if !processGone(pid) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		_, statErr := os.Stat(dir)
		alive := []int{}
		for _, pid := range pids {
			if !processGone(pid) {
				alive = append(alive, pid)
			}
		}
		t.Fatalf("%v: dir %s: %v; pids still alive: %v", err, dir, statErr, alive)
	}
}
