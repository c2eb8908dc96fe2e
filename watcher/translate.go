package watcher

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kdnsd/kdnsd/fsm"
)

// ServiceFrom translates a Kubernetes Service into its fsm record.
//
// ClusterIPs come from spec.clusterIPs (or spec.clusterIP when that is empty);
// "None" and addresses that do not parse are skipped. A service whose
// spec.clusterIP is "None" is headless. ExternalName is kept only for services
// of type ExternalName. A port without protocol is TCP, as the API defaults it.
func ServiceFrom(svc *corev1.Service) *fsm.Service {
	out := &fsm.Service{
		Namespace:                svc.Namespace,
		Name:                     svc.Name,
		Type:                     string(svc.Spec.Type),
		Headless:                 svc.Spec.ClusterIP == corev1.ClusterIPNone,
		PublishNotReadyAddresses: svc.Spec.PublishNotReadyAddresses,
	}
	if out.Type == "" {
		out.Type = fsm.TypeClusterIP
	}
	if out.Type == fsm.TypeExternalName {
		out.ExternalName = svc.Spec.ExternalName
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if s == corev1.ClusterIPNone {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out.ClusterIPs = append(out.ClusterIPs, a)
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.Port < 0 || p.Port > 65535 {
			continue
		}
		out.Ports = append(out.Ports, fsm.Port{
			Name:     p.Name,
			Protocol: protocol(p.Protocol),
			Port:     uint16(p.Port),
		})
	}
	return out
}

// SliceFrom translates a Kubernetes EndpointSlice into its fsm record. It
// reports false for a slice that belongs to no service (no or an empty
// kubernetes.io/service-name label) and for one of address type FQDN: neither
// carries records.
//
// A port without a number is skipped (no record can name it), one without a
// name has the empty name, one without protocol is TCP. An endpoint's
// addresses that do not parse are skipped, and so is an endpoint left without
// any. An endpoint is ready unless conditions.ready is false: the API says nil
// means ready. The endpoint's pod and node are not kept: no answer
// depends on them.
func SliceFrom(es *discoveryv1.EndpointSlice) (*fsm.EndpointSlice, bool) {
	svcName := es.Labels[discoveryv1.LabelServiceName]
	if svcName == "" || es.AddressType == discoveryv1.AddressTypeFQDN {
		return nil, false
	}
	out := &fsm.EndpointSlice{
		Namespace: es.Namespace,
		Name:      es.Name,
		Service:   svcName,
	}
	for _, p := range es.Ports {
		if p.Port == nil || *p.Port < 0 || *p.Port > 65535 {
			continue
		}
		port := fsm.Port{Protocol: string(corev1.ProtocolTCP), Port: uint16(*p.Port)}
		if p.Name != nil {
			port.Name = *p.Name
		}
		if p.Protocol != nil {
			port.Protocol = protocol(*p.Protocol)
		}
		out.Ports = append(out.Ports, port)
	}
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		var addrs []netip.Addr
		for _, s := range ep.Addresses {
			if a, err := netip.ParseAddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		e := fsm.Endpoint{
			Addresses: addrs,
			Ready:     ep.Conditions.Ready == nil || *ep.Conditions.Ready,
		}
		if ep.Hostname != nil {
			e.Hostname = *ep.Hostname
		}
		out.Endpoints = append(out.Endpoints, e)
	}
	return out, true
}

func protocol(p corev1.Protocol) string {
	if p == "" {
		return string(corev1.ProtocolTCP)
	}
	return string(p)
}

// PodFrom translates a Kubernetes Pod into its fsm record. It reports false
// for a pod that has terminated (phase Succeeded or Failed) and for one
// without an address that parses: neither has records. Addresses come from
// status.podIPs (or status.podIP when that is empty), IPv4-mapped IPv6
// addresses as IPv4, duplicates once.
func PodFrom(p *corev1.Pod) (*fsm.Pod, bool) {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil, false
	}
	ips := make([]string, 0, len(p.Status.PodIPs))
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	out := &fsm.Pod{Namespace: p.Namespace, Name: p.Name}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out.IPs, a.Unmap()) {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	if len(out.IPs) == 0 {
		return nil, false
	}
	return out, true
}
