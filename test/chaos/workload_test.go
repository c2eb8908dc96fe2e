package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kdnsd/kdnsd/resolver"
	"github.com/kdnsd/kdnsd/test/cluster"
)

// Workload rates. Writes are ~20 API requests a second; every replica gets
// readRate probes a second, each an applied-index question and a name
// question on one socket.
const (
	writeInterval = 50 * time.Millisecond
	readRate      = 100
	queryTimeout  = time.Second
	// liveObjects is how many objects the writer keeps in flight.
	liveObjects = 15
	// sliceUpdates is how many times each object's address changes.
	sliceUpdates = 3
	neverNames   = 10
)

// lifecycle is the order of an object's writes.
var lifecycle = func() []string {
	ops := []string{OpCreateSlice, OpCreateService}
	for range sliceUpdates {
		ops = append(ops, OpUpdateSlice)
	}
	return append(ops, OpDeleteService, OpDeleteSlice)
}()

// object is one EndpointSlice + headless Service pair of the workload.
type object struct {
	name string
	step int // index into lifecycle of the next write
}

// recorder collects what the workload saw; safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	writes  []Write
	answers []Answer
	leaders []LeaderSample
}

func (rec *recorder) write(w Write) {
	rec.mu.Lock()
	rec.writes = append(rec.writes, w)
	rec.mu.Unlock()
}

func (rec *recorder) answer(a Answer) {
	rec.mu.Lock()
	rec.answers = append(rec.answers, a)
	rec.mu.Unlock()
}

// writer drives objects through their lifecycle through the API.
type writer struct {
	cs   kubernetes.Interface
	ns   string
	zone string
	rec  *recorder

	mu      sync.Mutex
	pool    []*object
	written []string // every name ever written to
	deleted []string // names whose service was deleted
	next    int      // objects made
	addrs   uint32   // addresses handed out
}

func (w *writer) fqdn(name string) string { return name + "." + w.ns + ".svc." + w.zone }

// newAddr returns an address no write has used before: every answer then
// names the one write it comes from.
func (w *writer) newAddr() string {
	w.addrs++
	n := w.addrs
	return fmt.Sprintf("10.%d.%d.%d", 128+n>>16, n>>8&0xff, n&0xff)
}

// run writes every writeInterval until ctx is done.
func (w *writer) run(ctx context.Context) {
	tick := time.NewTicker(writeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		var o *object
		if len(w.pool) < liveObjects {
			o = &object{name: fmt.Sprintf("o%d", w.next)}
			w.next++
			w.pool = append(w.pool, o)
		} else {
			o = w.pool[rand.IntN(len(w.pool))]
		}
		w.mu.Unlock()
		w.step(ctx, o)
	}
}

// step makes o's next write. A refused write is tried again later; any
// other failure leaves the object's state unknown, so it is dropped.
func (w *writer) step(ctx context.Context, o *object) bool {
	op := lifecycle[o.step]
	res := w.do(ctx, o.name, op)
	w.mu.Lock()
	defer w.mu.Unlock()
	if o.step == 0 && !res.Refused {
		w.written = append(w.written, o.name)
	}
	switch {
	case res.Refused:
		return false
	case res.Err != "":
		w.drop(o)
		return false
	}
	if op == OpDeleteService {
		w.deleted = append(w.deleted, o.name)
	}
	o.step++
	if o.step == len(lifecycle) {
		w.drop(o)
	}
	return true
}

func (w *writer) drop(o *object) {
	w.pool = slices.DeleteFunc(w.pool, func(p *object) bool { return p == o })
}

// do sends one write and records it.
func (w *writer) do(ctx context.Context, name, op string) Write {
	rec := Write{Name: w.fqdn(name), Op: op}
	if op == OpCreateSlice || op == OpUpdateSlice {
		w.mu.Lock()
		rec.Addr = w.newAddr()
		w.mu.Unlock()
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec.Sent = time.Now()
	err := w.apply(rctx, name, op, rec.Addr)
	if err == nil {
		rec.Acked = time.Now()
	} else {
		rec.Err = err.Error()
		rec.Refused = errors.Is(err, syscall.ECONNREFUSED)
	}
	w.rec.write(rec)
	return rec
}

func (w *writer) apply(ctx context.Context, name, op, addr string) error {
	slices := w.cs.DiscoveryV1().EndpointSlices(w.ns)
	services := w.cs.CoreV1().Services(w.ns)
	slice := func() *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(8080))}},
		}
	}
	var err error
	switch op {
	case OpCreateSlice:
		_, err = slices.Create(ctx, slice(), metav1.CreateOptions{})
	case OpUpdateSlice:
		// The whole object, without resourceVersion: the writer is its only
		// writer, so last-write-wins is the intended semantics.
		_, err = slices.Update(ctx, slice(), metav1.UpdateOptions{})
	case OpDeleteSlice:
		err = slices.Delete(ctx, name, metav1.DeleteOptions{})
	case OpCreateService:
		_, err = services.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
		}, metav1.CreateOptions{})
	case OpDeleteService:
		err = services.Delete(ctx, name, metav1.DeleteOptions{})
	}
	return err
}

// marker drives a fresh object named after base until its service
// exists, retrying until ctx is done, and returns its name and when the API
// first accepted one of its writes. A refused write is retried; after any
// other failure the object's state is unknown, so the writer starts over
// with a new name (no object is written after an unknown write).
func (w *writer) marker(ctx context.Context, base string) (string, time.Time, error) {
	var accepted time.Time
	// While the API server is down every write fails at once: retry at a
	// pace, not in a tight loop.
	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	name := base
	for attempt, step := 1, 0; step < 2; {
		res := w.do(ctx, name, lifecycle[step])
		if step == 0 && !res.Refused {
			w.mu.Lock()
			w.written = append(w.written, name)
			w.mu.Unlock()
		}
		switch {
		case res.Err == "":
			if accepted.IsZero() {
				accepted = res.Sent
			}
			step++
			continue
		case !res.Refused:
			attempt++
			name, step = fmt.Sprintf("%s-%d", base, attempt), 0
		}
		select {
		case <-ctx.Done():
			return "", time.Time{}, ctx.Err()
		case <-retry.C:
		}
	}
	return w.fqdn(name), accepted, nil
}

// pick returns a name to ask about: mostly one of the live objects, else a
// deleted one or one that never existed.
func (w *writer) pick() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch p := rand.IntN(10); {
	case p < 7 && len(w.pool) > 0:
		return w.fqdn(w.pool[rand.IntN(len(w.pool))].name)
	case p < 9 && len(w.deleted) > 0:
		return w.fqdn(w.deleted[len(w.deleted)-1-rand.IntN(min(len(w.deleted), 20))])
	}
	return w.fqdn(fmt.Sprintf("never%d", rand.IntN(neverNames)))
}

// names returns every name ever written and the never-existing ones.
func (w *writer) names() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, n := range w.written {
		out = append(out, w.fqdn(n))
	}
	for i := range neverNames {
		out = append(out, w.fqdn(fmt.Sprintf("never%d", i)))
	}
	return out
}

// probe asks r for the applied index and then for name, on one socket.
func probe(r *cluster.Replica, name string) Answer {
	a := Answer{Replica: r.ID, Name: name, Rcode: -1}
	a.IndexSent = time.Now()
	a.Sent = a.IndexSent
	fail := func(what string, err error) Answer {
		a.At = time.Now()
		a.Err = what + ": " + errKind(err)
		return a
	}
	conn, err := net.Dial("udp", r.DNSAddr)
	if err != nil {
		return fail("dial", err)
	}
	defer conn.Close()
	idx, err := exchange(conn, resolver.AppliedIndexName, dns.TypeTXT, dns.ClassCHAOS)
	if err != nil {
		return fail("index", err)
	}
	a.IndexAt = time.Now()
	if len(idx.Answer) == 1 {
		if txt, ok := idx.Answer[0].(*dns.TXT); ok && len(txt.Txt) == 1 {
			a.Index, _ = strconv.ParseUint(txt.Txt[0], 10, 64)
		}
	}
	a.Sent = time.Now()
	reply, err := exchange(conn, name, dns.TypeA, dns.ClassINET)
	if err != nil {
		return fail("query", err)
	}
	a.At = time.Now()
	a.Rcode = reply.Rcode
	for _, rr := range reply.Answer {
		if x, ok := rr.(*dns.A); ok {
			a.Addrs = append(a.Addrs, x.A.String())
		}
	}
	slices.Sort(a.Addrs)
	return a
}

// exchange sends one question on conn and waits up to queryTimeout for the
// reply with its id (an earlier question's late reply is skipped).
func exchange(conn net.Conn, name string, qtype, qclass uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Question[0].Qclass = qclass
	out, err := m.Pack()
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(queryTimeout))
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		reply := new(dns.Msg)
		if reply.Unpack(buf[:n]) == nil && reply.Id == m.Id {
			return reply, nil
		}
	}
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	return err.Error()
}

// read probes r readRate times a second, open loop (a probe that hangs
// does not delay the next), until ctx is done; it waits for its probes.
func read(ctx context.Context, r *cluster.Replica, w *writer, rec *recorder) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second / readRate)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		name := w.pick()
		wg.Go(func() { rec.answer(probe(r, name)) })
	}
}

// monitor polls every replica's /status every 100 ms until ctx is done.
func monitor(ctx context.Context, c *cluster.Cluster, rec *recorder) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var wg sync.WaitGroup
		for _, r := range c.Replicas {
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				st, err := r.Status(sctx)
				if err != nil {
					return
				}
				rec.mu.Lock()
				rec.leaders = append(rec.leaders, LeaderSample{At: time.Now(), Replica: r.ID, State: string(st.State), Term: st.Term})
				rec.mu.Unlock()
			})
		}
		wg.Wait()
	}
}

// appliedIndex asks r for its applied index; ok is false without an answer.
func appliedIndex(r *cluster.Replica) (uint64, bool) {
	conn, err := net.Dial("udp", r.DNSAddr)
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	reply, err := exchange(conn, resolver.AppliedIndexName, dns.TypeTXT, dns.ClassCHAOS)
	if err != nil || len(reply.Answer) != 1 {
		return 0, false
	}
	txt, ok := reply.Answer[0].(*dns.TXT)
	if !ok || len(txt.Txt) != 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(txt.Txt[0], 10, 64)
	return n, err == nil
}
