package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/miekg/dns"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/test/wait"
)

// propagationNamespace holds the services the propagation trials create.
const propagationNamespace = "propagation"

// propagationTarget is one server whose propagation delay is measured: the
// delay of a trial is when the slowest of addrs first answers.
type propagationTarget struct {
	name  string
	addrs []string
}

// measurePropagation runs trials: each creates a headless service and its
// slice of one ready endpoint through the API and, from the moment the API
// acknowledged the slice, asks every address of every target until it
// answers the service's name with that endpoint. It returns each target's
// delays, one a trial.
func measurePropagation(ctx context.Context, cs kubernetes.Interface, targets []propagationTarget, trials int) (map[string][]time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: propagationNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	delays := map[string][]time.Duration{}
	for i := range trials {
		svc := &fsm.Service{Namespace: propagationNamespace, Name: fmt.Sprintf("p%d", i), Headless: true,
			Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 80}}}
		ip := addrAt(netip.MustParseAddr("10.250.0.1"), i)
		sl := &fsm.EndpointSlice{Namespace: svc.Namespace, Name: svc.Name + "-x", Service: svc.Name,
			Ports:     []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}},
			Endpoints: []fsm.Endpoint{{Addresses: []netip.Addr{ip}, Ready: true}}}
		if err := createService(ctx, cs, svc, sl); err != nil {
			return nil, err
		}
		acked := time.Now()
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, len(targets))
		for _, t := range targets {
			wg.Go(func() {
				d, err := slowestAnswer(t.addrs, fqdn(svc), ip.String(), acked, 30*time.Second)
				if err != nil {
					errs <- fmt.Errorf("propagation trial %d, %s: %w", i+1, t.name, err)
					return
				}
				mu.Lock()
				delays[t.name] = append(delays[t.name], d)
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "propagation trial %d:", i+1)
		for _, t := range targets {
			fmt.Fprintf(os.Stderr, "  %s %v", t.name, delays[t.name][i].Round(10*time.Microsecond))
		}
		fmt.Fprintln(os.Stderr)
		// Let the servers settle, so that each trial starts from idle.
		time.Sleep(200 * time.Millisecond)
	}
	return delays, nil
}

// slowestAnswer polls every address until it answers name with want, and
// returns the time from since to the last of them doing so; it gives up
// after timeout.
func slowestAnswer(addrs []string, name, want string, since time.Time, timeout time.Duration) (time.Duration, error) {
	var mu sync.Mutex
	var last time.Time
	var wg sync.WaitGroup
	errs := make(chan error, len(addrs))
	for _, addr := range addrs {
		wg.Go(func() {
			client := &dns.Client{Timeout: time.Second}
			if !wait.Timing(timeout, func() bool { return answers(client, addr, name, want) }) {
				errs <- fmt.Errorf("%s did not answer %s with %s within %v", addr, name, want, timeout)
				return
			}
			at := time.Now()
			mu.Lock()
			if at.After(last) {
				last = at
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return last.Sub(since), nil
}
