// Package testenv owns kdnsd's real-API-server test environment: it starts a
// throwaway etcd and an upstream kube-apiserver (built by build.sh from the
// version pinned in test/testenv/tools) on free 127.0.0.1 ports, with
// everything they need (serving certificate, service-account keys, static
// tokens, RBAC from deploy/statefulset/rbac.yaml), and hands tests two
// identities:
//
//   - admin: group system:masters, for the tests' own setup (creating
//     Services, EndpointSlices, Pods, …);
//   - kdnsd: a user bound to the ClusterRole that ships in
//     deploy/statefulset/rbac.yaml, so code under test runs with exactly the
//     rights kdnsd has in a real cluster.
//
// An Env lives in one temp directory (certificates, kubeconfigs, etcd data,
// logs etcd.log and kube-apiserver.log). Stop kills both processes and removes
// that directory; should the test binary die without calling Stop (a panic in
// a test, a -timeout), the children die by Pdeathsig and a small helper
// process removes the directory.
//
// Typical use, one Env per test package, started by the first test that
// needs it (so that the package's pure tests run without one):
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		env := testenv.Get(t)
//		…
//	}
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kdnsd/kdnsd/test/wait"
)

// Identities of the static tokens.
const (
	AdminUser = "testenv-admin" // in group system:masters
	KdnsdUser = "kdnsd"         // bound to ClusterRole kdnsd (deploy/statefulset/rbac.yaml)
)

// Cluster networking the API server is started with (dual-stack).
const (
	ServiceCIDRv4 = "10.96.0.0/16"
	ServiceCIDRv6 = "fd00:10:96::/112"
)

// DefaultStartTimeout bounds Start when its context has no deadline.
const DefaultStartTimeout = 2 * time.Minute

// Env is a running etcd + kube-apiserver pair. Its methods are safe for
// concurrent use.
type Env struct {
	// Dir is the temp directory holding all of the Env's files; Stop removes it.
	Dir string
	// Host is the API server's URL, https://127.0.0.1:PORT.
	Host string
	// EtcdURL is etcd's client URL, http://127.0.0.1:PORT.
	EtcdURL string
	// AdminKubeconfig and KdnsdKubeconfig are kubeconfig files (inside Dir)
	// for the admin and the kdnsd identity.
	AdminKubeconfig string
	KdnsdKubeconfig string
	// StartupTime is how long Start took to bring the Env up.
	StartupTime time.Duration

	caPEM      []byte
	adminToken string
	kdnsdToken string

	kasBin  string
	kasArgs []string
	kasLog  string

	mu      sync.Mutex // guards etcd, kas and stopped
	etcd    *proc
	kas     *proc // nil while the API server is down (StopAPIServer)
	stopped bool
	reaper  *reaper

	stopOnce sync.Once
	stopErr  error
}

// AdminConfig returns a new rest.Config for the admin identity.
func (e *Env) AdminConfig() *rest.Config { return e.config(e.adminToken) }

// KdnsdConfig returns a new rest.Config for the least-privilege kdnsd
// identity (ClusterRole kdnsd from deploy/statefulset/rbac.yaml).
func (e *Env) KdnsdConfig() *rest.Config { return e.config(e.kdnsdToken) }

func (e *Env) config(token string) *rest.Config {
	return &rest.Config{
		Host:            e.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), e.caPEM...)},
		QPS:             1000,
		Burst:           2000,
		Timeout:         30 * time.Second,
	}
}

// Pids returns the process ids of etcd and (while it runs) kube-apiserver.
func (e *Env) Pids() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var pids []int
	for _, p := range []*proc{e.etcd, e.kas} {
		if p != nil {
			pids = append(pids, p.pid())
		}
	}
	return pids
}

// StopAPIServer kills kube-apiserver and waits for it, leaving etcd (and so
// every object) in place, so that tests can see how clients ride out an API
// server outage. StartAPIServer brings it back. It is a no-op while the API
// server is already down.
func (e *Env) StopAPIServer() error { return e.stopAPIServer(false) }

// ShutDownAPIServer is StopAPIServer by SIGTERM, as a kubelet or an
// operator stops kube-apiserver: it closes its watches cleanly before it
// exits (where a kill breaks them), and clients see the outage otherwise.
func (e *Env) ShutDownAPIServer() error { return e.stopAPIServer(true) }

// apiServerShutdownGrace bounds ShutDownAPIServer's wait before it kills.
const apiServerShutdownGrace = time.Minute

func (e *Env) stopAPIServer(graceful bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("testenv: StopAPIServer after Stop")
	}
	if e.kas == nil {
		return nil
	}
	if graceful {
		e.kas.terminate(apiServerShutdownGrace)
	} else {
		e.kas.kill()
	}
	e.kas = nil
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// address with the same certificates and tokens (so existing rest.Configs and
// kubeconfigs keep working), and waits until it is ready and the kdnsd
// identity has its rights again. ctx bounds only the startup
// (DefaultStartTimeout if it has no deadline). It is a no-op while the API
// server runs.
func (e *Env) StartAPIServer(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("testenv: StartAPIServer after Stop")
	}
	if e.kas != nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	p, err := startProc("kube-apiserver", e.kasLog, e.kasBin, e.kasArgs)
	if err != nil {
		return err
	}
	e.kas = p
	err = e.waitReady(ctx)
	if err == nil {
		err = e.waitKdnsdAccess(ctx)
	}
	if err != nil {
		p.kill()
		e.kas = nil
		return err
	}
	return nil
}

// Stop kills kube-apiserver and etcd (their whole process groups), waits for
// them, and removes Dir. It is idempotent; later calls return the first
// result.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		for _, p := range []*proc{e.kas, e.etcd} {
			if p != nil {
				p.kill()
			}
		}
		e.mu.Unlock()
		var errs []error
		if e.Dir != "" {
			if err := os.RemoveAll(e.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		if e.reaper != nil {
			if err := e.reaper.stop(); err != nil {
				errs = append(errs, fmt.Errorf("testenv: cleanup helper: %w", err))
			}
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// Start brings up etcd and kube-apiserver, applies deploy/statefulset/rbac.yaml
// and waits until the API server is ready and the kdnsd identity has its
// rights. ctx bounds only the startup (DefaultStartTimeout if it has no
// deadline); the Env runs until Stop. On error nothing is left running.
func Start(ctx context.Context) (*Env, error) {
	kas, err := Binary()
	if err != nil {
		return nil, err
	}
	etcd, err := EtcdBinary()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	rbac, err := loadManifests(filepath.Join(root, RBACFile))
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	began := time.Now()
	// A free port can be taken by someone else (another test package's Env)
	// between picking and binding it: then try again with new ports.
	const attempts = 3
	for i := 1; ; i++ {
		e, err := start(ctx, kas, etcd, rbac)
		if err == nil {
			e.StartupTime = time.Since(began)
			return e, nil
		}
		if i == attempts || ctx.Err() != nil || !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
}

var errPortInUse = errors.New("port already in use")

func start(ctx context.Context, kasBin, etcdBin string, rbac []manifestObject) (_ *Env, err error) {
	base, err := tempBase()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, "kdnsd-testenv-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	if e.reaper, err = startReaper(dir); err != nil {
		return nil, err
	}

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, kasPort := ports[0], ports[1], ports[2]
	e.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	e.Host = "https://127.0.0.1:" + strconv.Itoa(kasPort)

	// etcd first: the API server only becomes ready once it reaches etcd, and
	// both starting at once overlaps their start-up.
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcdProc, err := startProc("etcd", filepath.Join(dir, "etcd.log"), etcdBin, []string{
		"--name=testenv",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + e.EtcdURL,
		"--advertise-client-urls=" + e.EtcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testenv=" + peerURL,
		"--initial-cluster-state=new",
		"--log-level=warn",
		"--logger=zap",
		"--log-outputs=stderr",
		// kube-apiserver asks etcd < 3.4.31 for no progress notifications
		// (RequestWatchProgress), so its watch caches learn the current
		// revision only from events or etcd's periodic notifications (default
		// every 10m): without these, a watch without resourceVersion stalls up
		// to 3s. 1s costs ~3% of a core at idle; 100ms would cost ~25%.
		"--experimental-watch-progress-notify-interval=1s",
	})
	if err != nil {
		return nil, err
	}
	e.etcd = etcdProc

	p, err := writePKI(dir)
	if err != nil {
		return nil, err
	}
	e.caPEM = p.caPEM
	e.adminToken, e.kdnsdToken = randomToken(), randomToken()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf(
		"%s,%s,%s,\"system:masters\"\n%s,%s,%s\n",
		e.adminToken, AdminUser, AdminUser, e.kdnsdToken, KdnsdUser, KdnsdUser)), 0o600); err != nil {
		return nil, err
	}

	e.kasBin, e.kasLog = kasBin, filepath.Join(dir, "kube-apiserver.log")
	e.kasArgs = []string{
		"--etcd-servers=" + e.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kasPort),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servingKey,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + ServiceCIDRv4 + "," + ServiceCIDRv6,
		// ServiceAccount admission rejects Pods until a controller-manager
		// (absent here) has made each namespace's "default" ServiceAccount.
		"--disable-admission-plugins=ServiceAccount",
		// The lease reconciler would publish the "kubernetes" Service's
		// endpoints, and refuses a loopback advertise address.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
	if e.kas, err = startProc("kube-apiserver", e.kasLog, e.kasBin, e.kasArgs); err != nil {
		return nil, err
	}

	if err := e.waitReady(ctx); err != nil {
		return nil, err
	}
	if e.AdminKubeconfig, err = e.writeKubeconfig("admin.kubeconfig", AdminUser, e.adminToken); err != nil {
		return nil, err
	}
	if e.KdnsdKubeconfig, err = e.writeKubeconfig("kdnsd.kubeconfig", KdnsdUser, e.kdnsdToken); err != nil {
		return nil, err
	}
	if err := e.applyRBAC(ctx, rbac); err != nil {
		return nil, e.failure(err)
	}
	return e, nil
}

// waitReady polls etcd's /health and the API server's /readyz until both
// answer OK, failing early if either process exits.
func (e *Env) waitReady(ctx context.Context) error {
	etcd, kas := e.etcd, e.kas
	hc, err := rest.HTTPClientFor(e.AdminConfig())
	if err != nil {
		return err
	}
	hc.Timeout = 2 * time.Second
	probe := func(url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
	var last error
	etcdOK := false
	err = wait.Until(ctx, "the API server to become ready", func() (bool, error) {
		select {
		case <-etcd.exited:
			return false, e.exitFailure(etcd)
		case <-kas.exited:
			return false, e.exitFailure(kas)
		default:
		}
		if !etcdOK {
			if last = probe(e.EtcdURL + "/health"); last != nil {
				return false, nil
			}
			etcdOK = true
		}
		last = probe(e.Host + "/readyz")
		return last == nil, nil
	})
	if err != nil && ctx.Err() != nil {
		return e.failure(fmt.Errorf("testenv: %w (last probe: %v)", err, last))
	}
	return err
}

func (e *Env) exitFailure(p *proc) error {
	err := p.exitError()
	if b, rerr := os.ReadFile(p.logPath); rerr == nil && strings.Contains(string(b), "address already in use") {
		return fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return err
}

// failure wraps err with the tails of both logs.
func (e *Env) failure(err error) error {
	var b strings.Builder
	b.WriteString(err.Error())
	for _, p := range []*proc{e.etcd, e.kas} {
		if p == nil {
			continue
		}
		b.WriteString("\n")
		b.WriteString(logTail(p.logPath, 20))
	}
	return errors.New(b.String())
}

func (e *Env) writeKubeconfig(name, user, token string) (string, error) {
	cfg := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{
			"testenv": {Server: e.Host, CertificateAuthorityData: e.caPEM},
		},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{user: {Token: token}},
		Contexts: map[string]*clientcmdapi.Context{
			user + "@testenv": {Cluster: "testenv", AuthInfo: user, Namespace: "default"},
		},
		CurrentContext: user + "@testenv",
	}
	path := filepath.Join(e.Dir, name)
	if err := clientcmd.WriteToFile(cfg, path); err != nil {
		return "", err
	}
	return path, nil
}

// newClients returns clientsets for the admin and the kdnsd identity.
func (e *Env) newClients() (admin, kdnsd kubernetes.Interface, err error) {
	if admin, err = kubernetes.NewForConfig(e.AdminConfig()); err != nil {
		return nil, nil, err
	}
	if kdnsd, err = kubernetes.NewForConfig(e.KdnsdConfig()); err != nil {
		return nil, nil, err
	}
	return admin, kdnsd, nil
}

// tempBase is where Env directories are made: $KDNSD_TESTENV_TMP, else
// /dev/shm when it is a writable tmpfs with room (etcd fsyncs every write;
// on tmpfs that costs nothing, and etcd 3.4 has no --unsafe-no-fsync), else
// os.TempDir().
func tempBase() (string, error) {
	if d := os.Getenv(EnvTmp); d != "" {
		return d, nil
	}
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == tmpfsMagic &&
		uint64(st.Bavail)*uint64(st.Bsize) >= 1<<30 && syscall.Access("/dev/shm", 0o2 /* W_OK */) == nil {
		return "/dev/shm", nil
	}
	return os.TempDir(), nil
}
