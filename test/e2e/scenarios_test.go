//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kdnsd/kdnsd/test/e2e/node"
)

// loadRate is the lookups per second the DNS client starts during a
// disruption. With ndots:5 each lookup of a name like kubernetes.default is
// two or more DNS queries (A and AAAA, per search domain tried), so the
// ClusterIP carries a multiple of it.
const loadRate = 200

// loadNames are looked up under load: a Service of another namespace
// (second search domain) and one of the client's own (first).
var loadNames = []string{"kubernetes.default", "e2e-web"}

// aftermath is how long after kdnsd settled the lookups still count with a
// disruption: kube-proxy's rules and conntrack follow the pods' readiness.
const aftermath = 5 * time.Second

// settleTimeout bounds how long kdnsd may take to settle after a
// disruption; it is a hang detector, not a performance bound.
const settleTimeout = 5 * time.Minute

// TestKdnsdOnANode runs the scenarios in order on one installation: each
// leaves three Ready replicas behind for the next.
func TestKdnsdOnANode(t *testing.T) {
	cs := adminClient(t)
	steps := []struct {
		name string
		run  func(*testing.T, kubernetes.Interface)
	}{
		{"1-fresh-install", freshInstall},
		{"7-rbac", rbacForReal},
		{"6-kubectl-exec-admin", kubectlExecAdmin},
		{"2-rollout-restart", rolloutRestart},
		{"3-pod-failures", podFailures},
		{"4-scale", scale},
		{"5-api-server-down", apiServerDown},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					logReplicas(t, cs)
				}
			})
			s.run(t, cs)
		}) && s.name == "1-fresh-install" {
			t.Fatal("kdnsd did not install: the other scenarios need it")
		}
	}
}

// freshInstall: three pods start in parallel, bootstrap one Raft cluster
// once, become Ready, and a pod resolves the API server, a new Service and
// an external name through them.
func freshInstall(t *testing.T, cs kubernetes.Interface) {
	start := time.Now()
	installKdnsd(t)
	eventually(t, "three Ready kdnsd pods in one Raft cluster", settleTimeout, clusterSettled(cs, replicaNames(3)))
	figure(t, "apply -k to 3 Ready pods with one leader and 3 voters", "%s", time.Since(start).Round(100*time.Millisecond))

	// Replicas that find no cluster may each bootstrap, but only with the
	// same configuration (same IDs and addresses at index 1): one cluster.
	bootstraps := map[string]int{}
	for _, name := range replicaNames(3) {
		for _, line := range strings.Split(mustKubectl(t, "logs", "-n", kdnsdNamespace, name), "\n") {
			if strings.Contains(line, "bootstrapped a new raft cluster") {
				var entry struct{ Peers string }
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("%s logged %q: %v", name, line, err)
				}
				bootstraps[entry.Peers]++
			}
		}
	}
	for config, n := range bootstraps {
		figure(t, "replicas that bootstrapped", "%d, with configuration %s", n, config)
	}
	if len(bootstraps) != 1 {
		t.Errorf("the pods bootstrapped %d different configurations, want exactly one: %v", len(bootstraps), bootstraps)
	}

	// A Service the load scenarios look up from the client's namespace.
	createService(t, cs, "e2e-web")

	// A client pod whose resolv.conf kubelet wrote: ClusterIP, search path.
	client := startDNSClient(t, cs, "dnsclient-install", 50,
		"kubernetes.default", "e2e-web", "upstream."+externalZone, "e2e-late")
	kubeAPI := serviceIP(t, cs, "default", "kubernetes")
	web := serviceIP(t, cs, "default", "e2e-web")
	var late answer
	created := time.Now()
	lateIP := createService(t, cs, "e2e-late")
	eventually(t, "e2e-late resolving in the client pod", time.Minute, func(ctx context.Context) (bool, error) {
		if err := client.fetch(ctx); err != nil {
			return false, err
		}
		for _, a := range client.all {
			if a.Name == "e2e-late" && a.resolves(lateIP) {
				late = a
				return true, nil
			}
		}
		return false, nil
	})
	// The first lookup that found it may have started before the Service
	// existed; what a client sees is when that answer arrived.
	figure(t, "new Service resolvable in a pod after its creation (first answer, client at 12.5 lookups/s of it)",
		"%s", max(late.end().Sub(created), 0).Round(time.Millisecond))

	answers := client.answersUntil(t, time.Now())
	want := map[string]string{"kubernetes.default": kubeAPI, "e2e-web": web, "upstream." + externalZone: externalIP}
	for name, ip := range want {
		i := slices.IndexFunc(answers, func(a answer) bool { return a.Name == name && a.resolves(ip) })
		if i < 0 {
			t.Errorf("the client pod never resolved %s to %s", name, ip)
		}
	}
	if upstreamQueries.Load() == 0 {
		t.Error("the upstream DNS server was never asked: external names did not go through kdnsd's forwarder")
	}
	// e2e-late did not exist at first: its lookups are left out.
	answers = slices.DeleteFunc(answers, func(a answer) bool { return a.Name == "e2e-late" })
	reportLoad(t, "client pod, names that exist throughout", answers, answers[0].start(), answers[len(answers)-1].start())
}

// createService creates a ClusterIP Service without endpoints in the
// client's namespace and returns its ClusterIP.
func createService(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	svc, err := cs.CoreV1().Services(clientNamespace).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.ClusterIP
}

func serviceIP(t *testing.T, cs kubernetes.Interface, namespace, name string) string {
	t.Helper()
	svc, err := cs.CoreV1().Services(namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.ClusterIP
}

// rbacForReal: the pods run as the shipped ServiceAccount, and a token of
// that account can read what kdnsd serves from and nothing else.
func rbacForReal(t *testing.T, cs kubernetes.Interface) {
	pods, err := kdnsdPods(t.Context(), cs)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range pods {
		if p.Spec.ServiceAccountName != "kdnsd" {
			t.Errorf("%s runs as ServiceAccount %q, want kdnsd", name, p.Spec.ServiceAccountName)
		}
		logs := mustKubectl(t, "logs", "-n", kdnsdNamespace, name)
		if n := strings.Count(strings.ToLower(logs), "forbidden"); n > 0 {
			t.Errorf("%s logged %d 'forbidden' errors: the shipped roles are short of what kdnsd does", name, n)
		}
	}
	figure(t, "what the kdnsd ServiceAccount may do (kubectl auth can-i --list)", "\n\n```\n%s```\n",
		mustKubectl(t, "auth", "can-i", "--list", "--as", "system:serviceaccount:kube-system:kdnsd", "-n", kdnsdNamespace))

	token := strings.TrimSpace(mustKubectl(t, "create", "token", "kdnsd", "-n", kdnsdNamespace, "--duration", "10m"))
	cfg, err := clientcmd.BuildConfigFromFlags("", nodeEnv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.AnonymousClientConfig(cfg)
	cfg.BearerToken = token
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	list := metav1.ListOptions{Limit: 1}
	// The Secret holding the Raft CA's key, by the name kustomize gave it.
	raftCASecret := "kdnsd-raft-ca"
	sts, err := cs.AppsV1().StatefulSets(kdnsdNamespace).Get(ctx, "kdnsd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Secret != nil && strings.HasPrefix(v.Secret.SecretName, raftCASecret) {
			raftCASecret = v.Secret.SecretName
		}
	}
	allowed := map[string]func() error{
		"list services (all namespaces)":       func() error { _, err := sa.CoreV1().Services("").List(ctx, list); return err },
		"list endpointslices (all namespaces)": func() error { _, err := sa.DiscoveryV1().EndpointSlices("").List(ctx, list); return err },
		"list pods (kube-system)":              func() error { _, err := sa.CoreV1().Pods(kdnsdNamespace).List(ctx, list); return err },
		"get statefulset kdnsd": func() error {
			_, err := sa.AppsV1().StatefulSets(kdnsdNamespace).Get(ctx, "kdnsd", metav1.GetOptions{})
			return err
		},
		"get configmap kdnsd (the DNS configuration)": func() error {
			_, err := sa.CoreV1().ConfigMaps(kdnsdNamespace).Get(ctx, "kdnsd", metav1.GetOptions{})
			return err
		},
	}
	denied := map[string]func() error{
		"list secrets (kube-system)": func() error { _, err := sa.CoreV1().Secrets(kdnsdNamespace).List(ctx, list); return err },
		"get the Raft CA secret " + raftCASecret: func() error {
			_, err := sa.CoreV1().Secrets(kdnsdNamespace).Get(ctx, raftCASecret, metav1.GetOptions{})
			return err
		},
		"list configmaps (kube-system)": func() error { _, err := sa.CoreV1().ConfigMaps(kdnsdNamespace).List(ctx, list); return err },
		"delete a service": func() error {
			return sa.CoreV1().Services(clientNamespace).Delete(ctx, "e2e-web", metav1.DeleteOptions{})
		},
		"create a service": func() error {
			_, err := sa.CoreV1().Services(clientNamespace).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "e2e-spoof"},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 53}}},
			}, metav1.CreateOptions{})
			return err
		},
		"scale statefulset kdnsd": func() error {
			s, err := sa.AppsV1().StatefulSets(kdnsdNamespace).GetScale(ctx, "kdnsd", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = sa.AppsV1().StatefulSets(kdnsdNamespace).UpdateScale(ctx, "kdnsd", s, metav1.UpdateOptions{})
			return err
		},
		"delete pod kdnsd-0": func() error {
			return sa.CoreV1().Pods(kdnsdNamespace).Delete(ctx, "kdnsd-0", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		},
		"create pods/exec on kdnsd-0": func() error {
			return sa.CoreV1().RESTClient().Post().Namespace(kdnsdNamespace).Resource("pods").Name("kdnsd-0").
				SubResource("exec").Param("command", "true").Param("stdout", "true").Do(ctx).Error()
		},
	}
	var ok, refused []string
	for what, call := range allowed {
		if err := call(); err != nil {
			t.Errorf("the kdnsd token cannot %s: %v", what, err)
		} else {
			ok = append(ok, what)
		}
	}
	for what, call := range denied {
		switch err := call(); {
		case apierrors.IsForbidden(err):
			refused = append(refused, what)
		case err == nil:
			t.Errorf("the kdnsd token may %s", what)
		default:
			t.Errorf("the kdnsd token, %s: want 403 Forbidden, got %v", what, err)
		}
	}
	slices.Sort(ok)
	slices.Sort(refused)
	figure(t, "kdnsd token, allowed", "%s", strings.Join(ok, "; "))
	figure(t, "kdnsd token, refused with 403", "%s", strings.Join(refused, "; "))
}

// kubectlExecAdmin: an operator runs kdnsd's admin commands inside a pod.
func kubectlExecAdmin(t *testing.T, cs kubernetes.Interface) {
	leader, _ := leaderOf(t, cs)
	for _, c := range []struct {
		args []string
		want []string // in the output
	}{
		{[]string{"peers", "list"}, replicaNames(3)},
		{[]string{"status"}, []string{"kdnsd-0", leader}},
	} {
		cmd := "kubectl exec kdnsd-0 -- kdnsd " + strings.Join(c.args, " ")
		out, err := kubectl(t.Context(), append([]string{"exec", "-n", kdnsdNamespace, "kdnsd-0", "--", "kdnsd"}, c.args...)...)
		if err != nil {
			t.Errorf("%s with the shipped manifest: %v", cmd, err)
			continue
		}
		figure(t, cmd, "\n\n```\n%s```\n", out)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s does not mention %s", cmd, w)
			}
		}
	}
}

// rolloutRestart: `kubectl rollout restart` while a pod looks names up
// through the ClusterIP.
func rolloutRestart(t *testing.T, cs kubernetes.Interface) {
	client := startDNSClient(t, cs, "dnsclient-rollout", loadRate, loadNames...)
	monitor := startLeaderMonitor(cs)
	from := time.Now()
	mustKubectl(t, "rollout", "restart", "-n", kdnsdNamespace, "statefulset/kdnsd")
	mustKubectl(t, "rollout", "status", "-n", kdnsdNamespace, "statefulset/kdnsd", "--timeout", settleTimeout.String())
	rolled := time.Since(from)
	eventually(t, "kdnsd settled after the rollout", settleTimeout, clusterSettled(cs, replicaNames(3)))
	to := time.Now()
	leaders, changes, leaderless, longest := monitor.stop()
	figure(t, "rollout restart of 3 pods, until rollout status returned", "%s", rolled.Round(100*time.Millisecond))
	reportLoad(t, "lookups through the ClusterIP during the rollout", client.answersUntil(t, to.Add(aftermath)), from, to.Add(aftermath))
	figure(t, "leader changes during the rollout", "%d (%s); no leader for %s in all, longest %s",
		changes, strings.Join(leaders, " → "), leaderless.Round(time.Millisecond), longest.Round(time.Millisecond))
}

// podFailures: the leader and a follower deleted, a container killed, a
// replica wiped with its claim; under load.
func podFailures(t *testing.T, cs kubernetes.Interface) {
	client := startDNSClient(t, cs, "dnsclient-failures", loadRate, loadNames...)
	kubeAPI := serviceIP(t, cs, "default", "kubernetes")
	disrupt := func(what string, act func() (victim string)) {
		t.Helper()
		monitor := startLeaderMonitor(cs)
		pods, err := kdnsdPods(t.Context(), cs)
		if err != nil {
			t.Fatal(err)
		}
		// Every replica is probed at its IP of now: the victim's probe
		// shows what it answers while it stops.
		probes := map[string]*replicaProbe{}
		for name, p := range pods {
			probes[name] = startReplicaProbe(p.Status.PodIP, "kubernetes.default.svc.cluster.local", kubeAPI)
		}
		from := time.Now()
		victim := act()
		eventually(t, "kdnsd settled after: "+what, settleTimeout, clusterSettled(cs, replicaNames(3)))
		to := time.Now()
		_, changes, leaderless, longest := monitor.stop()
		victimAnswers := ""
		for name, p := range probes {
			if answers := p.stop(); name == victim {
				victimAnswers = answers
			}
		}
		figure(t, what+": back to 3 Ready replicas in one configuration", "%s (victim %s, from %s to %s)", to.Sub(from).Round(100*time.Millisecond), victim,
			from.Format("15:04:05.000"), to.Format("15:04:05.000"))
		figure(t, what+": leader", "%d changes; no leader for %s in all, longest %s", changes, leaderless.Round(time.Millisecond), longest.Round(time.Millisecond))
		figure(t, what+": the victim's answers at its old pod IP, every 10 ms", "%s", victimAnswers)
		reportLoad(t, what+": lookups through the ClusterIP", client.answersUntil(t, to.Add(aftermath)), from, to.Add(aftermath))
	}

	disrupt("kubectl delete pod of the leader", func() string {
		leader, _ := leaderOf(t, cs)
		mustKubectl(t, "delete", "pod", "-n", kdnsdNamespace, leader, "--wait=false")
		return leader
	})
	disrupt("kubectl delete pod of a follower", func() string {
		follower := aFollower(t, cs)
		mustKubectl(t, "delete", "pod", "-n", kdnsdNamespace, follower, "--wait=false")
		return follower
	})
	disrupt("SIGKILL of the leader's container", func() string {
		leader, _ := leaderOf(t, cs)
		killKdnsd(t, leader, syscall.SIGKILL)
		return leader
	})
	disrupt("kubectl delete pod of a follower together with its PVC (wiped replica)", func() string {
		follower := aFollower(t, cs)
		pvc := "data-" + follower
		before, err := cs.CoreV1().PersistentVolumeClaims(kdnsdNamespace).Get(t.Context(), pvc, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The claim stays until its pod is gone (pvc-protection); the
		// StatefulSet controller then makes a new, empty one.
		mustKubectl(t, "delete", "pvc", "-n", kdnsdNamespace, pvc, "--wait=false")
		mustKubectl(t, "delete", "pod", "-n", kdnsdNamespace, follower, "--wait=false")
		eventually(t, "a new claim "+pvc, settleTimeout, func(ctx context.Context) (bool, error) {
			after, err := cs.CoreV1().PersistentVolumeClaims(kdnsdNamespace).Get(ctx, pvc, metav1.GetOptions{})
			return err == nil && after.UID != before.UID && after.Spec.VolumeName != "" && after.Spec.VolumeName != before.Spec.VolumeName, err
		})
		return follower
	})
}

// aFollower returns a replica that follows the current leader.
func aFollower(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	leader, pods := leaderOf(t, cs)
	for _, name := range replicaNames(3) {
		if _, ok := pods[name]; ok && name != leader {
			return name
		}
	}
	t.Fatalf("no follower of %s among %v", leader, pods)
	return ""
}

// scale: 3 → 5 → 3 replicas under load; the Raft configuration follows.
func scale(t *testing.T, cs kubernetes.Interface) {
	client := startDNSClient(t, cs, "dnsclient-scale", loadRate, loadNames...)
	for _, n := range []int{5, 3} {
		from := time.Now()
		mustKubectl(t, "scale", "-n", kdnsdNamespace, "statefulset/kdnsd", fmt.Sprintf("--replicas=%d", n))
		eventually(t, fmt.Sprintf("the Raft configuration following spec.replicas=%d", n), settleTimeout, clusterSettled(cs, replicaNames(n)))
		to := time.Now()
		figure(t, fmt.Sprintf("kubectl scale to %d: every pod Ready and %d voters", n, n), "%s", to.Sub(from).Round(100*time.Millisecond))
		reportLoad(t, fmt.Sprintf("scale to %d: lookups through the ClusterIP", n), client.answersUntil(t, to.Add(aftermath)), from, to.Add(aftermath))
	}
}

// apiOutage is how long the API server is stopped.
const apiOutage = 60 * time.Second

// apiServerDown: the API server stops for a minute. Pods cannot be deleted
// or recreated without it, so what an outage can do to kdnsd is done
// through the node: every kdnsd container is killed at once and kubelet
// restarts them from the pods it knows. They must answer every name from
// their disks, with no API server and no quorum at first.
func apiServerDown(t *testing.T, cs kubernetes.Interface) {
	names := replicaNames(3)
	pods, err := kdnsdPods(t.Context(), cs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kubernetes.default.svc.cluster.local":   serviceIP(t, cs, "default", "kubernetes"),
		"e2e-web.default.svc.cluster.local":      serviceIP(t, cs, "default", "e2e-web"),
		"e2e-late.default.svc.cluster.local":     serviceIP(t, cs, "default", "e2e-late"),
		"kube-dns.kube-system.svc.cluster.local": clusterDNSIP,
	}
	client := startDNSClient(t, cs, "dnsclient-outage", loadRate, loadNames...)

	from := time.Now()
	runNodeScript(t, "apiserver", "stop")
	stopped := time.Now()
	t.Cleanup(func() {
		if _, err := cs.Discovery().ServerVersion(); err != nil {
			runNodeScript(t, "apiserver", "start")
		}
	})

	killed := map[string]node.Process{}
	for _, name := range names {
		killed[name] = killKdnsd(t, name, syscall.SIGKILL)
	}
	var restarts []string
	for _, name := range names {
		ip := pods[name].Status.PodIP
		var proc node.Process
		var firstAnswer time.Time
		ctx, cancel := context.WithTimeout(t.Context(), apiOutage)
		for ctx.Err() == nil && firstAnswer.IsZero() {
			if proc.PID == 0 {
				if p, ok := node.FindKdnsd(name); ok && p.PID != killed[name].PID {
					proc = p
				}
			}
			if r, err := queryPod(ip, "kubernetes.default.svc.cluster.local"); err == nil && answersA(r, want["kubernetes.default.svc.cluster.local"]) {
				firstAnswer = time.Now()
			}
		}
		cancel()
		if firstAnswer.IsZero() || proc.PID == 0 {
			t.Errorf("%s: no answer from a restarted kdnsd within the outage (restarted process: %v)", name, proc.PID != 0)
			continue
		}
		restarts = append(restarts, fmt.Sprintf("%s %s", name, firstAnswer.Sub(proc.Started).Round(10*time.Millisecond)))
		for qname, ip := range want {
			if r, err := queryPod(pods[name].Status.PodIP, qname); err != nil || !answersA(r, ip) {
				t.Errorf("%s restarted without the API server: %s: %v %v, want %s", name, qname, r, err, ip)
			}
		}
	}
	figure(t, "API server down, all kdnsd containers SIGKILLed: first answer after the new process started (from disk, per pod)", "%s", strings.Join(restarts, ", "))

	time.Sleep(time.Until(stopped.Add(apiOutage))) // the outage lasts its full length on purpose
	runNodeScript(t, "apiserver", "start")         // returns once it is ready
	restarted := time.Now()
	eventually(t, "kdnsd settled after the API server came back", settleTimeout, clusterSettled(cs, names))
	to := time.Now()
	figure(t, "API server stopped for", "%s", apiOutage)
	reportLoad(t, "lookups through the ClusterIP, outage and recovery", client.answersUntil(t, to.Add(aftermath)), from, to.Add(aftermath))

	// The leader's watcher picks up a change made after the outage, and
	// every replica serves it.
	created := time.Now()
	ip := createService(t, cs, "e2e-after-outage")
	leader, pods := leaderOf(t, cs)
	// This waits for kube-proxy too: the API server removed itself from the
	// kubernetes Service when it stopped, and kdnsd reaches it through that
	// ClusterIP again only once kube-proxy's own watch is back.
	eventually(t, "a Service created after the outage resolving on every replica", settleTimeout, func(ctx context.Context) (bool, error) {
		for name, p := range pods {
			r, err := queryPod(p.Status.PodIP, "e2e-after-outage.default.svc.cluster.local")
			if err != nil || !answersA(r, ip) {
				return false, fmt.Errorf("%s: %v %v", name, r, err)
			}
		}
		return true, nil
	})
	figure(t, "a Service created once kdnsd settled after the outage, answered by every replica after", "%s", time.Since(created).Round(10*time.Millisecond))
	for _, line := range strings.Split(mustKubectl(t, "logs", "-n", kdnsdNamespace, leader), "\n") {
		var entry struct {
			Time time.Time
			Msg  string
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "initial sync committed; streaming changes" && entry.Time.After(restarted) {
			figure(t, "the leader's watcher streaming again after the API server was back", "%s", entry.Time.Sub(restarted).Round(10*time.Millisecond))
		}
	}
}

// logReplicas logs each kdnsd replica's /status and the end of its log: what
// a failed scenario left behind.
func logReplicas(t *testing.T, cs kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := kdnsdPods(ctx, cs)
	if err != nil {
		t.Logf("listing kdnsd pods: %v", err)
		return
	}
	for name, p := range pods {
		st, err := replicaStatus(ctx, p.Status.PodIP)
		t.Logf("--- %s (%s, ready %v): status %+v %v", name, p.Status.PodIP, podReady(p), st, err)
		logs, err := kubectl(ctx, "logs", "-n", kdnsdNamespace, name, "--tail", "25")
		t.Logf("%s%v", logs, err)
	}
}
