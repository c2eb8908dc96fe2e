package admin

import (
	"github.com/kdnsd/kdnsd/raftnode"
)

// Status is one replica's own view: GET /v1/status.
type Status struct {
	ID            string         `json:"id"`
	State         raftnode.State `json:"state"`
	Voter         bool           `json:"voter"`
	Term          uint64         `json:"term"`
	LeaderID      string         `json:"leader_id"`
	LeaderAddress string         `json:"leader_address"` // the leader's Raft address
	CommitIndex   uint64         `json:"commit_index"`
	AppliedIndex  uint64         `json:"applied_index"` // of the durable store
	ServedIndex   uint64         `json:"served_index"`  // of the records DNS answers from
	// LastContactMS is how long ago, in milliseconds, this replica last heard
	// from a leader. It is absent on the leader and on a replica that never
	// heard from one.
	LastContactMS  *int64 `json:"last_contact_ms,omitempty"`
	Admission      string `json:"admission,omitempty"` // raftnode.Admission
	Services       int    `json:"services"`
	EndpointSlices int    `json:"endpoint_slices"`
	Watcher        string `json:"watcher,omitempty"`
	// MaxCommandVersion is the newest Raft log command format the replica's
	// build decodes; CommandVersion, on the leader, the format it writes.
	MaxCommandVersion int `json:"max_command_version"`
	CommandVersion    int `json:"command_version,omitempty"`
	// ApplyBlocked says why the replica stopped applying the log, if it did
	// (an entry its build cannot decode).
	ApplyBlocked string `json:"apply_blocked,omitempty"`
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
	// Admission says whether the peer may vote (raftnode.Admission).
	Admission string `json:"admission,omitempty"`
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
