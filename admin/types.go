package admin

import (
	"fmt"
	"time"

	"github.com/kdnsd/kdnsd/dnsconfig"
	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
)

// Status is one replica's own view: what its Raft member knows
// (raftnode.Status) and what it serves. It is the one status document of a
// replica: the admin API serves it at GET /v1/status, and kdnsd serve's
// status port (--http-addr) at GET /status, which the replicas' membership
// probes read (its raftnode.Status fields) and which needs no credentials.
//
// Replicas of different versions read each other's documents during a
// rolling upgrade, so a field keeps its JSON name and meaning once shipped.
type Status struct {
	raftnode.Status
	// Voter says whether this replica is a voter in its configuration.
	Voter bool `json:"voter"`
	// LeaderAddress is LeaderAddr under the name GET /v1/status used before
	// it carried raftnode.Status; readers use it, so that they read the
	// status of replicas of those versions too.
	LeaderAddress string `json:"leader_address"`
	// LastContactMS is how long ago, in milliseconds, this replica last
	// heard from a leader (LastContact as an age). It is absent on the
	// leader and on a replica that never heard from one.
	LastContactMS *int64 `json:"last_contact_ms,omitempty"`
	// ServedIndex is the Raft index of the records DNS answers from.
	ServedIndex    uint64 `json:"served_index"`
	Services       int    `json:"services"`
	EndpointSlices int    `json:"endpoint_slices"`
	// Watcher describes the Kubernetes watcher: "follower" off the leader.
	Watcher string `json:"watcher,omitempty"`
	// ConfigSource names the DNS configuration in force: the ConfigMap
	// version (namespace/name@resourceVersion), or "flags" when none was
	// committed. ConfigIndex is the Raft index it was committed at.
	ConfigSource string `json:"config_source,omitempty"`
	ConfigIndex  uint64 `json:"config_index,omitempty"`
	// ConfigError is why the leader refused the last ConfigMap version
	// (ConfigRejected) since the one in force; empty when it refused none.
	ConfigError    string `json:"config_error,omitempty"`
	ConfigRejected string `json:"config_rejected,omitempty"`
}

// NewStatus makes the Status of a replica whose Raft member reports st, that
// holds the records v, answers DNS from the records at index served, and
// whose watcher is in the state watcher.
func NewStatus(st raftnode.Status, v *fsm.View, served uint64, watcher string) Status {
	out := Status{Status: st, LeaderAddress: st.LeaderAddr, ServedIndex: served, Watcher: watcher}
	out.Services, out.EndpointSlices = v.Counts()
	cfg := v.Config()
	out.ConfigSource, out.ConfigIndex = "flags", cfg.Index
	if cfg.Config != nil {
		out.ConfigSource = cfg.Config.Source
	}
	if cfg.Rejected != nil {
		out.ConfigRejected, out.ConfigError = cfg.Rejected.Source, cfg.Rejected.Error
	}
	if st.State != raftnode.StateLeader && !st.LastContact.IsZero() {
		out.LastContactMS = new(time.Since(st.LastContact).Milliseconds())
	}
	for _, srv := range st.Servers {
		if srv.ID == st.ID {
			out.Voter = srv.Voter
		}
	}
	return out
}

// DNSConfigResponse is GET /v1/config: the DNS configuration one replica
// serves, value by value with where each came from.
type DNSConfigResponse struct {
	ReportedBy string `json:"reported_by"`
	// Source names the committed configuration ("flags" for none) and
	// Index the Raft index it was committed at.
	Source   string              `json:"source"`
	Index    uint64              `json:"index"`
	Settings []dnsconfig.Setting `json:"settings"`
	// Records are the custom records, in zone-file form.
	Records []string `json:"records,omitempty"`
	// Rejected and Error: the ConfigMap version refused since, and why.
	Rejected string `json:"rejected,omitempty"`
	Error    string `json:"error,omitempty"`
}

// NewDNSConfigResponse describes what a replica with flags flags serves
// from st.
func NewDNSConfigResponse(id string, flags *fsm.DNSConfig, st *fsm.ConfigState) DNSConfigResponse {
	if flags == nil {
		flags = &fsm.DNSConfig{}
	}
	inForce, settings := dnsconfig.InForce(flags, st)
	out := DNSConfigResponse{ReportedBy: id, Source: inForce.Source, Index: st.Index, Settings: settings}
	for _, r := range inForce.Records {
		out.Records = append(out.Records, fmt.Sprintf("%s %d IN %s %s", r.Name, r.TTL, r.Type, r.Data))
	}
	if st.Rejected != nil {
		out.Rejected, out.Error = st.Rejected.Source, st.Rejected.Error
	}
	return out
}

// Peer is one member of the Raft configuration as GET /v1/peers reports it.
type Peer struct {
	ID           string `json:"id"`
	Address      string `json:"address"`                 // Raft address
	AdminAddress string `json:"admin_address,omitempty"` // where it was asked for its status
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
	// Reachable says whether the peer answered; the fields below are its own
	// answer and are zero when it did not.
	Reachable     bool           `json:"reachable"`
	State         raftnode.State `json:"state,omitempty"`
	Term          uint64         `json:"term,omitempty"`
	LastContactMS *int64         `json:"last_contact_ms,omitempty"`
	AppliedIndex  uint64         `json:"applied_index"`
	ServedIndex   uint64         `json:"served_index"`
	// Admission says whether the peer may vote.
	Admission raftnode.Admission `json:"admission,omitempty"`
	// MaxCommandVersion is the newest command format the peer decodes (1
	// for a release from before formats were advertised).
	MaxCommandVersion int `json:"max_command_version,omitempty"`
	// Healthy: the peer answered as itself, and either leads or is a follower
	// that knows the leader and heard from it within HealthyContact.
	Healthy bool `json:"healthy"`
	// Problem says why a peer is not healthy.
	Problem string `json:"problem,omitempty"`
}

// PeersResponse is GET /v1/peers.
type PeersResponse struct {
	ReportedBy string `json:"reported_by"` // the replica that gathered it
	LeaderID   string `json:"leader_id"`   // as that replica knows it; "" without a leader
	// CommitIndex is the Raft commit index as that replica knows it.
	CommitIndex uint64 `json:"commit_index"`
	Peers       []Peer `json:"peers"` // in configuration order
}

// AddPeerRequest is the body of POST /v1/peers. Voter defaults to true.
type AddPeerRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"` // host:port of its Raft transport
	Voter   *bool  `json:"voter,omitempty"`
}

// Configuration is the Raft configuration after a membership change.
type Configuration struct {
	Servers []raftnode.ServerInfo `json:"servers"`
}

// TransferRequest is the body of POST /v1/leader/transfer; an empty ID lets
// Raft choose the most up-to-date voter.
type TransferRequest struct {
	ID string `json:"id,omitempty"`
}

// TransferResponse says who led before and who leads now ("" while the
// election is still going on).
type TransferResponse struct {
	PreviousLeader string `json:"previous_leader"`
	LeaderID       string `json:"leader_id"`
}

// RestoreResponse is POST /v1/snapshot: what was restored, and the leader's
// applied index afterwards.
type RestoreResponse struct {
	LeaderID       string `json:"leader_id"`
	Index          uint64 `json:"index"`
	Admission      string `json:"admission,omitempty"` // raftnode.Admission
	Services       int    `json:"services"`
	EndpointSlices int    `json:"endpoint_slices"`
}

// ErrorResponse is the body of every error.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Headers of the API.
const (
	// HeaderPeer names the replica that handled a request.
	HeaderPeer = "X-Kdnsd-Peer"
	// HeaderForwardedBy marks a request forwarded to the leader, naming the
	// replica that forwarded it.
	HeaderForwardedBy = "X-Kdnsd-Forwarded-By"
	// HeaderSnapshotIndex is the Raft index of the snapshot GET /v1/snapshot
	// returns.
	HeaderSnapshotIndex = "X-Kdnsd-Snapshot-Index"
	// HeaderClient marks a request as sent by a program such as the kdnsd
	// CLI, not by a web page: a request that changes state needs it or a
	// JSON body (see the package documentation). Any value will do.
	HeaderClient = "X-Kdnsd-Client"
)
