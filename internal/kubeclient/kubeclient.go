// Package kubeclient owns how kdnsd's informers talk to the Kubernetes API,
// shared by the watcher (services, endpoint slices) and membership (pods,
// the StatefulSet).
package kubeclient

import "k8s.io/client-go/kubernetes"

// ListWatchOnly returns client made to use classic LIST+WATCH rather than
// client-go's watch-list streaming (feature WatchListClient, on by default).
// In client-go v0.37 the watch-list path retries "connection refused"
// internally, sleeping up to a minute without honouring the context and
// without reporting the error to the watch error handler: an unreachable API
// server would then be invisible in states and logs, and would hold up a
// shutdown. Classic LIST+WATCH reports every failure and honours the context.
func ListWatchOnly(client kubernetes.Interface) kubernetes.Interface {
	return listWatchOnly{client}
}

type listWatchOnly struct{ kubernetes.Interface }

// IsWatchListSemanticsUnSupported is the hook (see
// k8s.io/client-go/util/watchlist.DoesClientNotSupportWatchListSemantics)
// by which a client opts out of watch-list.
func (listWatchOnly) IsWatchListSemanticsUnSupported() bool { return true }
