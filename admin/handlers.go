package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kdnsd/kdnsd/fsm"
	"github.com/kdnsd/kdnsd/raftnode"
)

// HealthyContact is how recently a follower must have heard from the leader
// to count as healthy.
const HealthyContact = 5 * time.Second

// changeTimeout bounds a membership change or a leadership transfer.
const changeTimeout = 30 * time.Second

func (s *Server) status() Status {
	v := s.cfg.Views.View()
	served, watcher := v.Index(), ""
	if s.cfg.ServedIndex != nil {
		served = s.cfg.ServedIndex()
	}
	if s.cfg.WatcherState != nil {
		watcher = s.cfg.WatcherState()
	}
	return NewStatus(s.cfg.Node.Status(), v, served, watcher)
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

func (s *Server) handleDNSConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, NewDNSConfigResponse(s.id, s.cfg.FlagDNSConfig, s.cfg.Views.View().Config()))
}

// servers reads the configuration, answering the error itself.
func (s *Server) servers(w http.ResponseWriter) ([]raftnode.ServerInfo, bool) {
	servers, err := s.cfg.Node.Servers()
	if err != nil {
		writeError(w, statusOf(err), "read the raft configuration: %v", err)
		return nil, false
	}
	return servers, true
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	resp, err := s.gatherPeers(r.Context())
	if err != nil {
		writeError(w, statusOf(err), "read the raft configuration: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// gatherPeers returns the Raft configuration with each peer's health, asking the
// others for their status.
func (s *Server) gatherPeers(ctx context.Context) (PeersResponse, error) {
	servers, err := s.cfg.Node.Servers()
	if err != nil {
		return PeersResponse{}, err
	}
	leaderID, _ := s.cfg.Node.Leader()
	resp := PeersResponse{ReportedBy: s.id, LeaderID: leaderID, CommitIndex: s.cfg.Node.Status().CommitIndex, Peers: make([]Peer, len(servers))}
	var wg sync.WaitGroup
	for i, srv := range servers {
		p := &resp.Peers[i]
		*p = Peer{ID: srv.ID, Address: srv.Address, Voter: srv.Voter, Leader: srv.ID == leaderID}
		if srv.ID == s.id {
			st := s.status()
			p.fill(&st, leaderID)
			continue
		}
		if p.AdminAddress, p.Problem = s.peerAddr(srv.ID, srv.Address); p.AdminAddress == "" {
			continue
		}
		wg.Go(func() {
			st, err := s.peerStatus(ctx, p.AdminAddress)
			if err != nil {
				p.Problem = "unreachable: " + err.Error()
				return
			}
			p.fill(st, leaderID)
		})
	}
	wg.Wait()
	return resp, nil
}

// fill records a peer's own status and judges its health.
func (p *Peer) fill(st *Status, leaderID string) {
	p.Reachable = true
	p.State, p.Term, p.LastContactMS = st.State, st.Term, st.LastContactMS
	p.AppliedIndex, p.ServedIndex, p.Admission = st.AppliedIndex, st.ServedIndex, st.Admission
	p.MaxCommandVersion = max(st.MaxCommandVersion, fsm.BaseCommandVersion)
	switch {
	case st.ID != p.ID:
		p.Problem = fmt.Sprintf("its admin address answers as %q", st.ID)
	case st.ApplyBlocked != "":
		p.Problem = st.ApplyBlocked
	case st.State == raftnode.StateLeader:
		p.Healthy = true
	case st.State != raftnode.StateFollower:
		p.Problem = "state " + string(st.State)
	case st.LeaderID == "":
		p.Problem = "knows no leader"
	case st.LastContactMS == nil || time.Duration(*st.LastContactMS)*time.Millisecond > HealthyContact:
		p.Problem = "has not heard from the leader for over " + HealthyContact.String()
	default:
		p.Healthy = true
	}
	if p.Healthy && leaderID != "" && st.LeaderID != leaderID {
		p.Healthy, p.Problem = false, fmt.Sprintf("follows %q, not %q", st.LeaderID, leaderID)
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "bad request body: %v", err)
		return false
	}
	return true
}

func (s *Server) handleAddPeer(w http.ResponseWriter, r *http.Request) {
	var req AddPeerRequest
	if !decodeBody(w, r, &req) {
		return
	}
	voter := req.Voter == nil || *req.Voter
	if req.ID == "" {
		writeError(w, http.StatusBadRequest, "a peer needs an id")
		return
	}
	if host, port, err := net.SplitHostPort(req.Address); err != nil || host == "" || port == "" {
		writeError(w, http.StatusBadRequest, "peer %q: address %q is not host:port", req.ID, req.Address)
		return
	}
	servers, ok := s.servers(w)
	if !ok {
		return
	}
	for _, srv := range servers {
		if srv.ID == req.ID && srv.Voter != voter {
			writeError(w, http.StatusConflict, "peer %q is already in the configuration as a %s; remove it first to change that", req.ID, suffrage(srv.Voter))
			return
		}
	}
	s.log.Info("admin: adding a peer", append([]any{"peer", req.ID, "address", req.Address, "voter", voter}, who(r)...)...)
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	if err := s.cfg.Node.AddServer(ctx, req.ID, req.Address, voter); err != nil {
		writeError(w, statusOf(err), "add peer %q: %v", req.ID, err)
		return
	}
	s.writeConfiguration(w)
}

func suffrage(voter bool) string {
	if voter {
		return "voter"
	}
	return "non-voter"
}

func (s *Server) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	servers, ok := s.servers(w)
	if !ok {
		return
	}
	if !hasServer(servers, id) {
		writeError(w, http.StatusNotFound, "no peer %q in the raft configuration", id)
		return
	}
	s.log.Info("admin: removing a peer", append([]any{"peer", id}, who(r)...)...)
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	if err := s.cfg.Node.RemoveServer(ctx, id); err != nil {
		if errors.Is(err, raftnode.ErrUnknownServer) {
			writeError(w, http.StatusNotFound, "no peer %q in the raft configuration", id)
			return
		}
		writeError(w, statusOf(err), "remove peer %q: %v", id, err)
		return
	}
	s.writeConfiguration(w)
}

func hasServer(servers []raftnode.ServerInfo, id string) bool {
	for _, srv := range servers {
		if srv.ID == id {
			return true
		}
	}
	return false
}

func (s *Server) writeConfiguration(w http.ResponseWriter) {
	servers, ok := s.servers(w)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, Configuration{Servers: servers})
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req TransferRequest
	if !decodeBody(w, r, &req) {
		return
	}
	servers, ok := s.servers(w)
	if !ok {
		return
	}
	if req.ID == s.id {
		writeJSON(w, http.StatusOK, TransferResponse{PreviousLeader: s.id, LeaderID: s.id})
		return
	}
	others := 0
	for _, srv := range servers {
		if srv.ID == req.ID && !srv.Voter {
			writeError(w, http.StatusBadRequest, "peer %q is a non-voter and cannot lead", req.ID)
			return
		}
		if srv.ID != s.id && srv.Voter {
			others++
		}
	}
	if req.ID != "" && !hasServer(servers, req.ID) {
		writeError(w, http.StatusNotFound, "no peer %q in the raft configuration", req.ID)
		return
	}
	if others == 0 {
		writeError(w, http.StatusBadRequest, "there is no other voter to take over leadership")
		return
	}
	s.log.Info("admin: transferring leadership", append([]any{"to", req.ID}, who(r)...)...)
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	leader, err := s.cfg.Node.TransferLeadership(ctx, req.ID)
	if err != nil {
		if errors.Is(err, raftnode.ErrUnknownServer) {
			writeError(w, http.StatusNotFound, "no peer %q in the raft configuration", req.ID)
			return
		}
		writeError(w, statusOf(err), "transfer leadership: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, TransferResponse{PreviousLeader: s.id, LeaderID: leader})
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Views.View()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(HeaderSnapshotIndex, strconv.FormatUint(v.Index(), 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kdnsd-%s-%d.snapshot"`, s.id, v.Index()))
	s.log.Info("admin: sending a snapshot", append([]any{"index", v.Index()}, who(r)...)...)
	if err := fsm.WriteSnapshot(w, v); err != nil {
		// The client sees a snapshot cut short, which does not read.
		s.log.Warn("admin: sending a snapshot failed", "err", err)
	}
}

func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxSnapshotBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "snapshot larger than %d bytes", s.cfg.MaxSnapshotBytes)
			return
		}
		writeError(w, http.StatusBadRequest, "read snapshot: %v", err)
		return
	}
	// Raft stops a replica whose state machine fails to restore: a
	// snapshot must read before it gets anywhere near Raft.
	v, err := fsm.ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a kdnsd snapshot: %v", err)
		return
	}
	services, slices := v.Counts()
	s.log.Warn("admin: restoring the whole cluster from a snapshot",
		append([]any{"services", services, "endpoint_slices", slices, "bytes", len(data)}, who(r)...)...)
	if err := s.cfg.Node.RestoreCluster(r.Context(), bytes.NewReader(data)); err != nil {
		writeError(w, statusOf(err), "restore: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, RestoreResponse{
		LeaderID: s.id, Index: s.cfg.Views.View().Index(), Services: services, EndpointSlices: slices,
	})
}

// statusOf maps an error from the node to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, raftnode.ErrUnknownServer):
		return http.StatusNotFound
	case errors.Is(err, raftnode.ErrNotLeader), errors.Is(err, raftnode.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, raftnode.ErrRestoreNotNow):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// errorMessage is the message of an error body, or the body itself.
func errorMessage(body []byte) string {
	var e ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
