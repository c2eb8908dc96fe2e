// Package membership owns how kdnsd replicas running as a Kubernetes
// StatefulSet find each other and form, grow and shrink their Raft group,
// without cluster DNS (kdnsd is the cluster DNS; its pods use dnsPolicy
// Default):
//
//   - Discovery: a namespace-scoped informer on the pods that match a label
//     selector gives every peer's current address, pod IP + Raft port, by
//     Raft server ID = pod name (Addr, for raftnode.Config.Discovered).
//   - Bootstrap: a replica without Raft state waits until the first
//     BootstrapExpect pods of the voter StatefulSet (<sts>-0 … <sts>-N-1)
//     have IPs and no pod of the selector reports Raft state on its /status
//     page; then every one of them bootstraps the same sorted configuration.
//     A replica never bootstraps while any peer has state, or while it cannot
//     tell (a probe fails): it waits for the leader to add it and receives the
//     state from Raft.
//   - Reconciliation: while a replica leads (Reconcile, run per leadership
//     term), it makes the Raft configuration follow the StatefulSet: pods with
//     ordinals below spec.replicas become voters (added as non-voters first,
//     promoted once they have seen themselves staged and caught up), a
//     voter that started without state (a wiped volume) is demoted first
//     (admission.go), pods labelled
//     kdnsd.io/voter=false become non-voters, changed pod IPs update
//     addresses, servers of a scale-down leave once their pods are gone, and
//     servers nobody wants that stay unreachable longer than
//     DeadServerTimeout are removed. It changes one server at a time, never
//     removes the leader, and removes a voter only when the healthy voters
//     left are a majority of the new configuration.
//   - Static peers (Static, for --peers): the same bootstrap and admission
//     rules and command format, without the Kubernetes API.
//   - Command format: before each change of a round, the leader works out
//     the newest Raft log command format that every server of the
//     configuration advertises on its status page (an unreachable one counts
//     as format 1) and writes only that (versions.go), so that in a rolling
//     upgrade no replica is sent an entry its build cannot decode.
//
// Bootstrap never starts a cluster while a peer holds more than the same new
// bootstrap (a wiped replica joins the cluster that exists instead).
//
// The package reads the API server only (pods and the StatefulSet); it never
// writes to it. Running Raft itself is raftnode's business; wiring flags is
// cmd/kdnsd's.
package membership
