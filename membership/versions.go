package membership

import (
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
)

// commandVersion returns the newest Raft log command format every server of
// the configuration decodes: the least of the max_command_version their
// status pages advertise. A server that did not answer this round, or that
// answers without the field (a release from before formats were advertised),
// counts as format 1, which every release decodes.
//
// Every server counts, not only voters. A non-voter also applies the log to
// answer DNS, and it may be promoted within the round before the versions
// are worked out again. A server added during the round has no probe result
// yet and counts as format 1 until it answers.
func commandVersion(servers []raftnode.ServerInfo, health map[string]probeResult) int {
	version := fsm.MaxCommandVersion
	for _, s := range servers {
		v := fsm.BaseCommandVersion
		if r, ok := health[s.ID]; ok && r.err == nil {
			v = max(r.status.MaxCommandVersion, fsm.BaseCommandVersion)
		}
		version = min(version, v)
	}
	return version
}

// gateCommandVersion tells the leader which command format it may write:
// a newer format only once every server decodes it, so that no replica stops
// applying (see fsm.Store.ApplyEntries) in a rolling upgrade. It runs before
// every change of a round, on the configuration as it is then.
func (r *reconciler) gateCommandVersion(servers []raftnode.ServerInfo, health map[string]probeResult) {
	if err := r.node.SetCommandVersion(commandVersion(servers, health)); err != nil {
		r.m.log.Warn("setting the command format", "err", err)
	}
}
