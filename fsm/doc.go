// Package fsm owns kdnsd's replicated record model: the services and endpoint
// slices that every replica answers from, the commands that change them, and
// the durable store that applies those commands in Raft log order.
//
// # Model
//
// The model is deliberately free of Kubernetes and DNS types: a Service and an
// EndpointSlice here are plain values that the watcher translates into and the
// resolver translates out of. Endpoints are keyed by their slice, so an
// EndpointSlice change replaces exactly that slice's endpoints. Namespaces
// (names) and Pods (names and addresses) exist from command format 2 on;
// Tracked says whether a View holds all of them, since a View written while
// the cluster could not replicate them (format 1) holds none or part.
//
// The cluster's DNS configuration (DNSConfig: upstreams, stub domains,
// custom records, TTL, pod mode, negative-cache TTL, cache size; from
// format 2 on) is part of the View too (View.Config), with the log index it
// was committed at, so that every replica switches at the same entry and a
// restarted replica serves the last one committed. A configuration the
// leader refused is recorded beside it (ConfigRejection) without changing
// it. Package dnsconfig parses and validates; fsm only stores.
//
// # Durability and monotonic reads
//
// hashicorp/raft restores only its last snapshot on start and re-applies the
// entries after it only once a leader has told it the commit index. A replica
// restarted while the cluster has no quorum would therefore serve an old
// snapshot, or nothing, even though it had applied newer entries before it
// stopped. kdnsd avoids that by making the state machine itself durable:
//
//   - Store keeps its own bbolt file. Every batch of log entries is applied in
//     one bbolt transaction that also records the index of the last entry, and
//     the transaction commits (fsync) before the new state is published.
//   - Entries at or below the recorded index are skipped, so re-applying the
//     log after a restart is harmless (apply is idempotent by log index).
//   - Raft is configured with NoSnapshotRestoreOnStart; on start the store
//     loads its file and publishes it before Raft is even started. A replica
//     therefore answers at once after a restart, without leader, quorum or API
//     server, and never serves state older than it served before it stopped,
//     also after kill -9 (a state is published only after it is on disk).
//   - Snapshots (for followers that fall behind the log) carry the applied
//     index; Restore replaces the whole file in one transaction.
//
// # Command formats and upgrades
//
// Each log entry starts with its command format version. Format 1 is what
// every release decodes and what a leader writes by default; format 2 adds
// the operations on namespaces, pods and Tracked, and a format-1 entry that
// holds one does not decode;
// MaxCommandVersion is the newest this build decodes and can write
// (EncodeVersion). Which format a leader writes is decided elsewhere: only
// one that every server of the cluster advertises (raftnode, membership).
//
// An entry the store cannot decode — a newer format, an unknown operation or
// field, a malformed or invalid command — is never skipped: the store stops
// applying at it (ApplyEntries, BlockedError), keeps serving its last View,
// and its file keeps ending before the entry. Skipping would let a replica of
// an older build diverge silently from the ones that can read the entry; a
// stopped replica is visible instead (unready, logged, in metrics), and once
// it runs a build that decodes the entry it applies it and the rest of the
// log on start, because apply is idempotent by index.
//
// # Publication
//
// Each apply publishes a new immutable View through an atomic pointer; the
// View shares with the previous one every part of its services and slices
// that the batch did not change (persistent ordered maps, internal/cowtree), so a
// batch costs what it changes, and a reader can find what changed between
// two Views (View.ChangedServices) without a change log. Readers
// never lock and never block apply; they learn of a new View through a
// coalescing notification channel (Store.Subscribe) and read Store.View.
package fsm
