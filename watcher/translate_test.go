package watcher

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kdnsd/kdnsd/fsm"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func meta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}

func TestServiceFrom(t *testing.T) {
	tests := []struct {
		name string
		in   corev1.Service
		want fsm.Service
	}{{
		name: "cluster IP with ports",
		in: corev1.Service{ObjectMeta: meta("ns", "web"), Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80},
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53},
				{Name: "sctp", Protocol: corev1.ProtocolSCTP, Port: 9999},
			},
		}},
		want: fsm.Service{Namespace: "ns", Name: "web", Type: fsm.TypeClusterIP,
			ClusterIPs: addrs("10.96.0.10"),
			Ports: []fsm.Port{
				{Name: "http", Protocol: "TCP", Port: 80},
				{Name: "dns", Protocol: "UDP", Port: 53},
				{Name: "sctp", Protocol: "SCTP", Port: 9999},
			}},
	}, {
		name: "dual stack keeps primary first",
		in: corev1.Service{ObjectMeta: meta("ns", "dual"), Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  "fd00:10:96::a",
			ClusterIPs: []string{"fd00:10:96::a", "10.96.0.11"},
		}},
		want: fsm.Service{Namespace: "ns", Name: "dual", Type: fsm.TypeClusterIP,
			ClusterIPs: addrs("fd00:10:96::a", "10.96.0.11")},
	}, {
		name: "only the legacy clusterIP field",
		in: corev1.Service{ObjectMeta: meta("ns", "old"), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.12",
		}},
		want: fsm.Service{Namespace: "ns", Name: "old", Type: fsm.TypeNodePort,
			ClusterIPs: addrs("10.96.0.12")},
	}, {
		name: "headless",
		in: corev1.Service{ObjectMeta: meta("ns", "db"), Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                "None",
			ClusterIPs:               []string{"None"},
			PublishNotReadyAddresses: true,
			Ports:                    []corev1.ServicePort{{Name: "pg", Port: 5432}},
		}},
		want: fsm.Service{Namespace: "ns", Name: "db", Type: fsm.TypeClusterIP, Headless: true,
			PublishNotReadyAddresses: true,
			Ports:                    []fsm.Port{{Name: "pg", Protocol: "TCP", Port: 5432}}},
	}, {
		name: "external name",
		in: corev1.Service{ObjectMeta: meta("ns", "ext"), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com",
		}},
		want: fsm.Service{Namespace: "ns", Name: "ext", Type: fsm.TypeExternalName,
			ExternalName: "db.example.com"},
	}, {
		name: "external name ignored on other types",
		in: corev1.Service{ObjectMeta: meta("ns", "lb"), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.13"},
			ExternalName: "stale.example.com",
		}},
		want: fsm.Service{Namespace: "ns", Name: "lb", Type: fsm.TypeLoadBalancer,
			ClusterIPs: addrs("10.96.0.13")},
	}, {
		name: "unparseable and None addresses skipped, empty type is ClusterIP",
		in: corev1.Service{ObjectMeta: meta("ns", "odd"), Spec: corev1.ServiceSpec{
			ClusterIP:  "010.96.0.1",
			ClusterIPs: []string{"010.96.0.1", "None", "", "fd00::1"},
		}},
		want: fsm.Service{Namespace: "ns", Name: "odd", Type: fsm.TypeClusterIP,
			ClusterIPs: addrs("fd00::1")},
	}, {
		name: "no ports no IPs",
		in:   corev1.Service{ObjectMeta: meta("ns", "bare")},
		want: fsm.Service{Namespace: "ns", Name: "bare", Type: fsm.TypeClusterIP},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ServiceFrom(&tc.in)
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("ServiceFrom:\n got %+v\nwant %+v", *got, tc.want)
			}
			if !got.Equal(&tc.want) {
				t.Fatalf("Equal disagrees with DeepEqual")
			}
		})
	}
}

func TestSliceFrom(t *testing.T) {
	labeled := func(ns, name, svc string) metav1.ObjectMeta {
		m := meta(ns, name)
		m.Labels = map[string]string{discoveryv1.LabelServiceName: svc, "other": "x"}
		return m
	}
	tests := []struct {
		name string
		in   discoveryv1.EndpointSlice
		want *fsm.EndpointSlice // nil: not translated
	}{{
		name: "full slice: target and node not kept",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  labeled("ns", "web-abc", "web"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{
				{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(8080))},
				{Name: new("dns"), Protocol: new(corev1.ProtocolUDP), Port: new(int32(53))},
			},
			Endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{"10.1.0.5"},
				Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
				Hostname:   new("web-0"),
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-0"},
				NodeName:   new("node-a"),
			}, {
				Addresses:  []string{"10.1.0.6"},
				Conditions: discoveryv1.EndpointConditions{Ready: new(false)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "web-1"},
			}},
		},
		want: &fsm.EndpointSlice{Namespace: "ns", Name: "web-abc", Service: "web",
			Ports: []fsm.Port{{Name: "http", Protocol: "TCP", Port: 8080}, {Name: "dns", Protocol: "UDP", Port: 53}},
			Endpoints: []fsm.Endpoint{
				{Addresses: addrs("10.1.0.5"), Hostname: "web-0", Ready: true},
				{Addresses: addrs("10.1.0.6"), Ready: false},
			}},
	}, {
		name: "nil ready means ready; non-pod target ref; API order kept",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  labeled("ns", "ext-1", "ext"),
			AddressType: discoveryv1.AddressTypeIPv6,
			Endpoints: []discoveryv1.Endpoint{{
				Addresses: []string{"fd00::9", "fd00::2"},
				TargetRef: &corev1.ObjectReference{Kind: "Node", Name: "node-b"},
			}, {
				Addresses:  []string{"fd00::1"},
				Conditions: discoveryv1.EndpointConditions{Serving: new(true), Terminating: new(true)},
			}},
		},
		want: &fsm.EndpointSlice{Namespace: "ns", Name: "ext-1", Service: "ext",
			Endpoints: []fsm.Endpoint{
				{Addresses: addrs("fd00::9", "fd00::2"), Ready: true},
				{Addresses: addrs("fd00::1"), Ready: true},
			}},
	}, {
		name: "nil port, name and protocol",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  labeled("ns", "p", "svc"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{
				{Name: new("all")},                   // no port number: no record can name it
				{Port: new(int32(9000))},             // unnamed, default TCP
				{Name: new(""), Port: new(int32(1))}, // empty name
				{Name: new("bad"), Port: new(int32(70000))},
			},
		},
		want: &fsm.EndpointSlice{Namespace: "ns", Name: "p", Service: "svc",
			Ports: []fsm.Port{{Protocol: "TCP", Port: 9000}, {Protocol: "TCP", Port: 1}}},
	}, {
		name: "unparseable addresses skipped, endpoint without any dropped",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  labeled("ns", "bad", "svc"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"not-an-ip"}},
				{Addresses: []string{"10.0.0.1", "10.0.0.300"}},
			},
		},
		want: &fsm.EndpointSlice{Namespace: "ns", Name: "bad", Service: "svc",
			Endpoints: []fsm.Endpoint{{Addresses: addrs("10.0.0.1"), Ready: true}}},
	}, {
		name: "no service-name label",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  meta("ns", "orphan"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
		},
	}, {
		name: "empty service-name label",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  labeled("ns", "empty", ""),
			AddressType: discoveryv1.AddressTypeIPv4,
		},
	}, {
		name: "FQDN slice",
		in: discoveryv1.EndpointSlice{
			ObjectMeta:  labeled("ns", "fqdn", "svc"),
			AddressType: discoveryv1.AddressTypeFQDN,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"example.com"}}},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := SliceFrom(&tc.in)
			if tc.want == nil {
				if ok || got != nil {
					t.Fatalf("SliceFrom = %+v, %v; want nil, false", got, ok)
				}
				return
			}
			if !ok {
				t.Fatalf("SliceFrom reported false")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SliceFrom:\n got %+v\nwant %+v", *got, *tc.want)
			}
			if !got.Equal(tc.want) {
				t.Fatalf("Equal disagrees with DeepEqual")
			}
		})
	}
}

// TestTranslateStableThroughLog checks that a translated record survives the
// log encoding unchanged by Equal, so that a resync diff against records
// that went through Raft finds no difference.
func TestTranslateStableThroughLog(t *testing.T) {
	svc := ServiceFrom(&corev1.Service{ObjectMeta: meta("ns", "s"), Spec: corev1.ServiceSpec{
		ClusterIPs: []string{"fd00:10:96::5", "10.96.0.5"},
		Ports:      []corev1.ServicePort{{Name: "a", Port: 1}},
	}})
	sl, _ := SliceFrom(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "s-1", Labels: map[string]string{discoveryv1.LabelServiceName: "s"}},
		AddressType: discoveryv1.AddressTypeIPv6,
		Ports:       []discoveryv1.EndpointPort{{Port: new(int32(80))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}, Hostname: new("h")}, {Addresses: []string{"::ffff:10.0.0.1"}}},
	})
	data, err := fsm.Encode([]fsm.Command{fsm.UpsertService(svc), fsm.UpsertSlice(sl)})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := fsm.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !cmds[0].Service.Equal(svc) || !cmds[1].Slice.Equal(sl) {
		t.Fatalf("records changed through the log:\n%+v\n%+v", cmds[0].Service, cmds[1].Slice)
	}
}
