// Package watcher owns the one-way path from the Kubernetes API into the
// replicated record set: it translates Services and EndpointSlices into fsm
// commands and commits them through Raft while this replica leads.
//
// # One leadership term
//
// The caller runs Watcher.Run once per leadership term, never two at a time.
// A term starts with a Raft barrier, so that the local View holds everything
// earlier leaders committed. Then shared informers list and watch Services and
// EndpointSlices in all namespaces. They cache each object's translated
// record, the View's own when it is equal, not the object, and list in pages
// (Config.ListPageSize), each made records before the next is read: at 100k
// services the objects would be hundreds of megabytes (cache.go). Once their
// caches are synced, every key
// the API knows and every key the View knows is queued, and each key is
// compared with the View: only the difference is committed. A new leader thus
// repairs whatever happened while no leader watched (including deletions) with
// as many log entries as there are changes divided by Config.MaxBatch, and a
// resync against an unchanged cluster commits nothing.
//
// After that the term streams: informer events queue keys into a rate-limited
// work queue; a single worker takes keys in batches, diffs each against the
// View and commits the commands of a batch as one Raft entry. A failed commit
// requeues the batch's keys with per-key exponential backoff. When the
// context ends (leadership lost or shutdown) the queue and the informers stop
// at once; a batch whose commit failed for that reason is dropped, since the
// next leader's resync diff repairs it.
//
// # Namespaces and pods
//
// Namespaces (names only), and with Config.WatchPods pods (names and
// addresses of pods that have not terminated), are replicated too, but only while Raft commits in a
// command format that carries them (fsm.PodsCommandVersion): a replica of
// an older build could not apply them. The term looks at the format every
// half second; when it becomes new enough it queues every namespace and pod
// key of the API and the View, as at the start of a term, and commits
// fsm.Tracked with the entry that completes that diff, so that a replica
// never takes a half-replicated set for the whole. A kind the term does not
// watch (pods, after a leader in verified mode) is untracked before its
// records are deleted. While the format is too old, their changes wait: the
// diff when it moves on repairs them.
//
// # The DNS configuration
//
// ConfigWatcher, run beside Watcher in each term, watches one ConfigMap
// (kdnsd serve --config-map) and commits its parsed configuration
// (package dnsconfig) as fsm.SetConfig, or a refusal as fsm.RejectConfig
// that leaves the configuration in force as it is, with a Kubernetes Event
// on the ConfigMap, one log line and a count (Rejections); both travel in
// command format 2 only. Each term compares the ConfigMap with the View
// (also once a second, so that a record refused for colliding with a
// Service is accepted once the Service goes, and one that a new Service
// collides with is reported), so a new leader repeats nothing.
//
// # Failure isolation
//
// An unreachable or slow API server blocks nothing but the watcher: every
// wait honours the context, list and watch errors are logged and retried with
// client-go's backoff, and State reports them for status pages. That backoff
// grows to 30 s and cannot be set through shared informers, so while an
// informer is held up by errors the term also lists one object of each
// held-up resource every half second; once that succeeds the term ends and
// Run starts a new one at once, which relists and diffs against the View
// like a new leader's term.
//
// # Translation
//
// ServiceFrom and SliceFrom are pure functions from API objects to fsm
// records. They keep the order the API gives (ports, endpoints, addresses)
// rather than sorting: the order carries meaning for cluster IPs (primary
// family first), and a reorder by whoever writes a slice costs only one
// extra upsert of that slice, never a wrong record.
//
// # Batching
//
// Group commit, without a fixed window: a change that finds the worker idle
// is committed at once, and every change that arrives while that commit is
// in flight goes into the next entry (up to Config.MaxBatch commands). A
// burst of creations thus becomes a few large entries rather than hundreds
// of small ones, and a lone change waits for nothing but its own commit.
// While streaming, that next entry is appended at once, beside the one in
// flight (two at most): a change arriving a few milliseconds after another
// (an EndpointSlice after its Service) does not wait for the first to go
// round the followers. The two never share a key, since the work queue
// hands a key out again only once its batch is done.
package watcher
