package fsm

import (
	"fmt"
	"net/netip"
	"slices"
)

// Port is a named port of a service or of an endpoint slice.
type Port struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"` // TCP, UDP or SCTP
	Port     uint16 `json:"port"`
}

// ServiceKey names a service.
type ServiceKey struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
}

// Service types, as Kubernetes names them.
const (
	TypeClusterIP    = "ClusterIP"
	TypeNodePort     = "NodePort"
	TypeLoadBalancer = "LoadBalancer"
	TypeExternalName = "ExternalName"
)

// Service is what DNS needs to know of a Kubernetes Service.
type Service struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	// ClusterIPs holds one address per family, primary first. It is empty for
	// headless and ExternalName services.
	ClusterIPs               []netip.Addr `json:"ips,omitempty"`
	Headless                 bool         `json:"headless,omitempty"`
	ExternalName             string       `json:"externalName,omitempty"`
	Ports                    []Port       `json:"ports,omitempty"`
	PublishNotReadyAddresses bool         `json:"publishNotReady,omitempty"`
}

// Key returns the service's key.
func (s *Service) Key() ServiceKey { return ServiceKey{s.Namespace, s.Name} }

// Equal reports whether two services carry the same records.
func (s *Service) Equal(o *Service) bool {
	return s.Namespace == o.Namespace && s.Name == o.Name && s.Type == o.Type &&
		slices.Equal(s.ClusterIPs, o.ClusterIPs) && s.Headless == o.Headless &&
		s.ExternalName == o.ExternalName && slices.Equal(s.Ports, o.Ports) &&
		s.PublishNotReadyAddresses == o.PublishNotReadyAddresses
}

// SliceKey names an endpoint slice. Slice names are unique in a namespace.
type SliceKey struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
}

// EndpointSlice is one Kubernetes EndpointSlice of a service.
type EndpointSlice struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
	// Service is the name of the service the slice belongs to (in the same
	// namespace).
	Service   string     `json:"service"`
	Ports     []Port     `json:"ports,omitempty"`
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// Key returns the slice's key.
func (e *EndpointSlice) Key() SliceKey { return SliceKey{e.Namespace, e.Name} }

// ServiceKey returns the key of the service the slice belongs to.
func (e *EndpointSlice) ServiceKey() ServiceKey { return ServiceKey{e.Namespace, e.Service} }

// Equal reports whether two slices carry the same records.
func (e *EndpointSlice) Equal(o *EndpointSlice) bool {
	return e.Namespace == o.Namespace && e.Name == o.Name && e.Service == o.Service &&
		slices.Equal(e.Ports, o.Ports) &&
		slices.EqualFunc(e.Endpoints, o.Endpoints, func(a, b Endpoint) bool { return a.Equal(&b) })
}

// Endpoint is one endpoint of a slice: usually a pod.
type Endpoint struct {
	Addresses []netip.Addr `json:"addrs"`
	Hostname  string       `json:"hostname,omitempty"`
	// The endpoint's pod and node names, which releases before this one
	// kept: no answer depends on them, and they were 32 of an endpoint's
	// 80 bytes, and two strings more. Entries, store files and snapshots
	// written then still hold them; they are read and dropped.
	Pod  Dropped `json:"pod,omitzero"`
	Node Dropped `json:"node,omitzero"`
	// Ready comes last: a zero-size last field would be padded.
	Ready bool `json:"ready,omitempty"`
}

// Dropped is a string field that older records hold and this build no
// longer keeps: it decodes a JSON string (or null) to nothing, and is
// never written.
type Dropped struct{}

// UnmarshalJSON accepts a JSON string or null, as a string field did.
func (*Dropped) UnmarshalJSON(raw []byte) error {
	if len(raw) > 0 && raw[0] == '"' || string(raw) == "null" {
		return nil
	}
	return fmt.Errorf("a dropped string field holds %.20s, not a string", raw)
}

// Equal reports whether two endpoints are the same.
func (e *Endpoint) Equal(o *Endpoint) bool {
	return slices.Equal(e.Addresses, o.Addresses) && e.Hostname == o.Hostname && e.Ready == o.Ready
}

// PodKey names a pod.
type PodKey struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
}

// Pod is a pod that has not terminated, with its addresses: what DNS needs
// to know to answer for a pod's address only while such a pod has it.
type Pod struct {
	Namespace string       `json:"ns"`
	Name      string       `json:"name"`
	IPs       []netip.Addr `json:"ips"`
}

// Key returns the pod's key.
func (p *Pod) Key() PodKey { return PodKey{p.Namespace, p.Name} }

// Equal reports whether two pods are the same.
func (p *Pod) Equal(o *Pod) bool {
	return p.Namespace == o.Namespace && p.Name == o.Name && slices.Equal(p.IPs, o.IPs)
}

// Tracked says which kinds of records, beyond services and endpoint slices,
// a View holds in full: the leader that wrote them watched that kind and
// committed all of it. Until then a View may hold none or part of them, and
// readers must not take a missing record for a missing object.
type Tracked struct {
	Namespaces bool `json:"namespaces,omitempty"`
	Pods       bool `json:"pods,omitempty"`
}

// A replica holds every record for its life (200k of them at 100k services),
// while JSON decoders leave each slice of a record with room to grow:
// goccy/go-json, which reads the store at start, makes every slice at least
// four elements long, and encoding/json (commands, snapshots) rounds up as
// append does. At 100k services that spare room was about 60 MB of a
// restarted replica's heap. compact moves a decoded record's slices into
// arrays of their exact length (an endpoint slice's addresses into one
// array), keeping nil and empty apart, as the decoders made them, and
// gives it the namespace name, type and port list the replica already
// holds (intern.go).

func (s *Service) compact() {
	s.Namespace, s.Type = intern(s.Namespace), intern(s.Type)
	s.ClusterIPs = exact(s.ClusterIPs)
	s.Ports = sharedPorts(s.Ports)
}

func (e *EndpointSlice) compact() {
	e.Namespace = intern(e.Namespace)
	e.Ports = sharedPorts(e.Ports)
	n := 0
	for _, ep := range e.Endpoints {
		n += len(ep.Addresses)
	}
	e.Endpoints = exact(e.Endpoints)
	addrs := make([]netip.Addr, 0, n)
	for i := range e.Endpoints {
		if a := e.Endpoints[i].Addresses; a != nil {
			start := len(addrs)
			addrs = append(addrs, a...)
			e.Endpoints[i].Addresses = addrs[start:len(addrs):len(addrs)]
		}
	}
}

func (p *Pod) compact() {
	p.Namespace = intern(p.Namespace)
	p.IPs = exact(p.IPs)
}

// exact returns s in an array of its length: s itself when it has no spare
// room.
func exact[E any](s []E) []E {
	if cap(s) == len(s) {
		return s
	}
	return slices.Clone(s)
}
