package cluster

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kdnsd/kdnsd/fsm"
)

// APIService is the Kubernetes Service whose translation is s.
func APIService(s *fsm.Service) *corev1.Service {
	spec := corev1.ServiceSpec{Type: corev1.ServiceType(s.Type), PublishNotReadyAddresses: s.PublishNotReadyAddresses}
	switch {
	case s.Type == fsm.TypeExternalName:
		spec.ExternalName = s.ExternalName
	case s.Headless:
		spec.ClusterIP = corev1.ClusterIPNone
	default:
		for _, ip := range s.ClusterIPs {
			spec.ClusterIPs = append(spec.ClusterIPs, ip.String())
			family := corev1.IPv4Protocol
			if ip.Is6() {
				family = corev1.IPv6Protocol
			}
			spec.IPFamilies = append(spec.IPFamilies, family)
		}
		spec.ClusterIP = spec.ClusterIPs[0]
		policy := corev1.IPFamilyPolicySingleStack
		if len(s.ClusterIPs) > 1 {
			policy = corev1.IPFamilyPolicyRequireDualStack
		}
		spec.IPFamilyPolicy = &policy
	}
	for _, p := range s.Ports {
		spec.Ports = append(spec.Ports, corev1.ServicePort{Name: p.Name, Protocol: corev1.Protocol(p.Protocol), Port: int32(p.Port)})
	}
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}, Spec: spec}
}

// APISlice is the Kubernetes EndpointSlice whose translation is e. A slice
// holds one address family; the slices given here must too.
func APISlice(e *fsm.EndpointSlice) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name, Labels: map[string]string{discoveryv1.LabelServiceName: e.Service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	for _, p := range e.Ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: new(p.Name), Protocol: new(corev1.Protocol(p.Protocol)), Port: new(int32(p.Port))})
	}
	for _, ep := range e.Endpoints {
		out := discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: new(ep.Ready)}}
		for _, a := range ep.Addresses {
			out.Addresses = append(out.Addresses, a.String())
			if a.Is6() {
				es.AddressType = discoveryv1.AddressTypeIPv6
			}
		}
		if ep.Hostname != "" {
			out.Hostname = new(ep.Hostname)
		}
		es.Endpoints = append(es.Endpoints, out)
	}
	return es
}
