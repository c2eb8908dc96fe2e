package membership

import (
	"errors"
	"testing"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
)

func TestCommandVersion(t *testing.T) {
	newest := fsm.MaxCommandVersion
	advertises := func(v int) probeResult { return probeResult{status: raftnode.Status{MaxCommandVersion: v}} }
	servers := []raftnode.ServerInfo{{ID: "kdnsd-0", Voter: true}, {ID: "kdnsd-1", Voter: true}, {ID: "kdnsd-2", Voter: false}}
	tests := []struct {
		name   string
		health map[string]probeResult
		want   int
	}{
		{"every server decodes this build's newest format", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": advertises(newest), "kdnsd-2": advertises(newest)}, newest},
		{"a server of a newer build does not raise it", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": advertises(newest + 1), "kdnsd-2": advertises(newest)}, newest},
		{"one voter of an older build", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": advertises(1), "kdnsd-2": advertises(newest)}, 1},
		{"a non-voter of an older build", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": advertises(newest), "kdnsd-2": advertises(1)}, 1},
		{"a release from before formats were advertised", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": advertises(0), "kdnsd-2": advertises(newest)}, 1},
		{"an unreachable server", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": {err: errors.New("refused")}, "kdnsd-2": advertises(newest)}, 1},
		{"a server not probed (added this round)", map[string]probeResult{
			"kdnsd-0": advertises(newest), "kdnsd-1": advertises(newest)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commandVersion(servers, tt.health); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
