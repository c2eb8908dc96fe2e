package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kdnsd/kdnsd/test/testenv"
	"github.com/kdnsd/kdnsd/test/wait"
)

// upstream is a DNS server of the test's own on loopback that answers every
// A query for a name under its domain with one address.
type upstream struct {
	addr    string
	answer  string
	queries atomic.Int32
}

func startUpstream(t *testing.T, answer string) *upstream {
	t.Helper()
	u := &upstream{answer: answer}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg).SetReply(req)
		m.RecursionAvailable = true
		if q := req.Question[0]; q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 300 IN A " + u.answer)
			m.Answer = []dns.RR{rr}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	u.addr = pc.LocalAddr().String()
	return u
}

// TestForwarding: names outside the cluster go to the upstream, a stub
// domain to its own server, answers are cached, and an ExternalName service
// is answered with its CNAME and the target's address from upstream.
func TestForwarding(t *testing.T) {
	general := startUpstream(t, "192.0.2.1")
	corp := startUpstream(t, "198.51.100.7")
	dir := t.TempDir()
	c, err := New(bin, testenv.Get(t).KdnsdKubeconfig, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.Upstream = general.addr
	c.ExtraArgs = []string{"--stub-domain", "corp.example=" + corp.addr}
	stopOnCleanup(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	cs := admin(t)
	ns := namespace(t, cs)
	_, err = cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.org"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	for _, r := range c.Replicas {
		status(t, r)
		if !answersA(r, "www.example.org.", "192.0.2.1") {
			t.Errorf("%s did not forward www.example.org", r.ID)
		}
		if !answersA(r, "db.corp.example.", "198.51.100.7") {
			t.Errorf("%s did not send db.corp.example to the stub domain's server", r.ID)
		}
	}
	before := general.queries.Load()
	for range 5 {
		answersA(c.Replicas[0], "www.example.org.", "192.0.2.1")
	}
	if n := general.queries.Load() - before; n > 1 {
		t.Errorf("%d upstream queries for 5 repeats of a cached name", n)
	}
	// The forwarder's counters are on /metrics.
	resp, err := http.Get("http://" + c.Replicas[0].HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kdnsd_forward_upstream_healthy{upstream="` + general.addr + `"} 1`,
		`kdnsd_forward_cache_hits_total `,
		`kdnsd_served_index `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), "kdnsd_forward_cache_hits_total 0\n") {
		t.Error("no cache hits counted")
	}

	r := c.Replicas[1]
	var reply *dns.Msg
	wait.For(t, "ExternalName answered with CNAME and address", 20*time.Second, func() bool {
		reply, err = r.Query(fqdn("ext", ns), dns.TypeA, false)
		if err != nil || len(reply.Answer) != 2 {
			return false
		}
		cname, ok1 := reply.Answer[0].(*dns.CNAME)
		a, ok2 := reply.Answer[1].(*dns.A)
		return ok1 && ok2 && cname.Target == "www.example.org." && a.A.String() == "192.0.2.1"
	})
	if !strings.EqualFold(reply.Question[0].Name, fqdn("ext", ns)) {
		t.Errorf("question %v", reply.Question)
	}
}
