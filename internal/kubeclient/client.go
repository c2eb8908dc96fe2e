// Package kubeclient owns how kdnsd talks to the Kubernetes API: the
// resources it lists and watches (for the watcher's and membership's
// informers), the Events it records, and whether the API server answers
// (Reachability).
//
// Its Client is REST clients of the three API groups kdnsd reads (core/v1,
// discovery.k8s.io/v1, apps/v1), decoding with a scheme of those groups
// only. client-go's clientset decodes with a scheme of every built-in API
// group, registered when the program starts whether it is used or not: a
// kdnsd built on it had a 17 MB larger binary, and each replica held ~9 MB
// more memory (BENCHMARKS.md).
package kubeclient

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
)

// Client is what kdnsd asks of the Kubernetes API.
type Client interface {
	// List lists r in namespace ("" for every namespace).
	List(ctx context.Context, r *Resource, namespace string, opts metav1.ListOptions) (runtime.Object, error)
	// Watch watches r in namespace ("" for every namespace).
	Watch(ctx context.Context, r *Resource, namespace string, opts metav1.ListOptions) (watch.Interface, error)
	// CreateEvent records ev in its namespace.
	CreateEvent(ctx context.Context, ev *corev1.Event) error
}

// Resource is an API resource kdnsd reads.
type Resource struct {
	// Name is the resource's name in the API (plural, lower case).
	Name string
	// Example is an empty object of the resource's type (for an
	// informer's type checks).
	Example    runtime.Object
	group      schema.GroupVersion
	namespaced bool
	newList    func() runtime.Object
}

// The resources kdnsd reads.
var (
	Services = &Resource{"services", &corev1.Service{}, corev1.SchemeGroupVersion, true,
		func() runtime.Object { return &corev1.ServiceList{} }}
	EndpointSlices = &Resource{"endpointslices", &discoveryv1.EndpointSlice{}, discoveryv1.SchemeGroupVersion, true,
		func() runtime.Object { return &discoveryv1.EndpointSliceList{} }}
	Namespaces = &Resource{"namespaces", &corev1.Namespace{}, corev1.SchemeGroupVersion, false,
		func() runtime.Object { return &corev1.NamespaceList{} }}
	Pods = &Resource{"pods", &corev1.Pod{}, corev1.SchemeGroupVersion, true,
		func() runtime.Object { return &corev1.PodList{} }}
	ConfigMaps = &Resource{"configmaps", &corev1.ConfigMap{}, corev1.SchemeGroupVersion, true,
		func() runtime.Object { return &corev1.ConfigMapList{} }}
	StatefulSets = &Resource{"statefulsets", &appsv1.StatefulSet{}, appsv1.SchemeGroupVersion, true,
		func() runtime.Object { return &appsv1.StatefulSetList{} }}
)

// scheme holds the types of the groups kdnsd reads, and the options and
// status types every group shares.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, appsv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s
}()

var (
	codecs         = serializer.NewCodecFactory(scheme)
	parameterCodec = runtime.NewParameterCodec(scheme)
)

// restClient is a Client over one REST client per API group.
type restClient struct {
	groups map[schema.GroupVersion]rest.Interface
}

// New returns a Client of cfg's API server. Its groups share one HTTP
// client and, when cfg sets QPS, one rate limit, as a clientset's do.
func New(cfg *rest.Config) (Client, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("kubernetes client: QPS %g needs a burst above 0", cfg.QPS)
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	c := &restClient{groups: map[schema.GroupVersion]rest.Interface{}}
	for _, gv := range []schema.GroupVersion{corev1.SchemeGroupVersion, discoveryv1.SchemeGroupVersion, appsv1.SchemeGroupVersion} {
		gcfg := rest.CopyConfig(cfg)
		gcfg.GroupVersion = &gv
		gcfg.APIPath = "/apis"
		if gv.Group == "" {
			gcfg.APIPath = "/api"
		}
		gcfg.NegotiatedSerializer = codecs.WithoutConversion()
		// Protobuf, as kube-controller-manager and CoreDNS ask for: a
		// new leader's list of 100k services and their slices is decoded
		// in a fraction of JSON's time (BENCHMARKS.md), and the API
		// server encodes it faster too. JSON stays acceptable for an
		// answer the server cannot give in protobuf.
		gcfg.ContentType = runtime.ContentTypeProtobuf
		gcfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		if gcfg.UserAgent == "" {
			gcfg.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		rc, err := rest.RESTClientForConfigAndClient(gcfg, httpClient)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client of %s: %w", gv, err)
		}
		c.groups[gv] = rc
	}
	return c, nil
}

func (c *restClient) request(verb func(rest.Interface) *rest.Request, r *Resource, namespace string, opts *metav1.ListOptions) *rest.Request {
	req := verb(c.groups[r.group]).NamespaceIfScoped(namespace, r.namespaced && namespace != "").Resource(r.Name).
		VersionedParams(opts, parameterCodec)
	if opts.TimeoutSeconds != nil {
		req = req.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	return req
}

func (c *restClient) List(ctx context.Context, r *Resource, namespace string, opts metav1.ListOptions) (runtime.Object, error) {
	list := r.newList()
	err := c.request(rest.Interface.Get, r, namespace, &opts).Do(ctx).Into(list)
	if err != nil {
		return nil, err
	}
	return list, nil
}

func (c *restClient) Watch(ctx context.Context, r *Resource, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.request(rest.Interface.Get, r, namespace, &opts).Watch(ctx)
}

func (c *restClient) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	return c.groups[corev1.SchemeGroupVersion].Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Error()
}

// ListWatch returns the lists and watches of r in namespace ("" for every
// namespace) that an informer makes through c, with tweak (when not nil)
// applied to each request's options.
func ListWatch(c Client, r *Resource, namespace string, tweak func(*metav1.ListOptions)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			if tweak != nil {
				tweak(&opts)
			}
			return c.List(ctx, r, namespace, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if tweak != nil {
				tweak(&opts)
			}
			return c.Watch(ctx, r, namespace, opts)
		},
	}
}

// ListWatchOnly returns lw made to be used with classic LIST+WATCH rather
// than client-go's watch-list streaming (feature WatchListClient, on by
// default). In client-go v0.37 the watch-list path retries "connection
// refused" internally, sleeping up to a minute without honouring the
// context and without reporting the error to the watch error handler: an
// unreachable API server would then be invisible in states and logs, and
// would hold up a shutdown. Classic LIST+WATCH reports every failure and
// honours the context.
func ListWatchOnly(lw *cache.ListWatch) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(lw, noWatchList{})
}

// noWatchList opts out of watch-list by the hook client-go asks clients
// (watchlist.DoesClientNotSupportWatchListSemantics).
type noWatchList struct{}

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

// Informer returns an informer of r in namespace ("" for every namespace)
// through c, with tweak (when not nil) applied to its requests' options,
// that lists and watches (ListWatchOnly) and indexes by namespace, as
// client-go's listers read.
func Informer(c Client, r *Resource, namespace string, tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(ListWatchOnly(ListWatch(c, r, namespace, tweak)), r.Example, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}
