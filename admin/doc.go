// Package admin owns kdnsd's operator API: an authenticated HTTPS endpoint
// and a unix socket on every replica for looking at and changing the Raft
// group (status, peers, membership, leadership, backup and restore of the
// records), and the Go client that the kdnsd CLI uses to call it.
//
// # Endpoints
//
// Every body is JSON except snapshots; errors are {"error": "..."} with a
// meaningful status code. Every response carries X-Kdnsd-Peer, the ID of the
// replica that handled the request.
//
//	GET    /                    an HTML status page: this replica, its peers, the DNS configuration
//	GET    /v1/status           this replica: Status
//	GET    /v1/config           the DNS configuration this replica serves, value by value
//	GET    /v1/peers            the Raft configuration with each peer's health: PeersResponse
//	POST   /v1/peers            AddPeerRequest → Configuration            (leader)
//	DELETE /v1/peers/{id}       → Configuration; 404 for an unknown ID    (leader)
//	POST   /v1/leader/transfer  TransferRequest (empty ID: any voter) → TransferResponse (leader)
//	GET    /v1/snapshot         fsm.WriteSnapshot of this replica's View (X-Kdnsd-Snapshot-Index)
//	POST   /v1/snapshot         a snapshot body → RestoreResponse        (leader)
//
// Status is also the document of GET /status on kdnsd serve's status port,
// which needs no credentials. GET /v1/peers asks every other peer's GET
// /v1/status (with this replica's own credentials and a short timeout); a
// peer that does not answer is shown unhealthy with the reason. GET /v1/snapshot is answered by the replica
// asked, not forwarded, so that a backup can be taken without quorum; its
// index header says how recent it is.
//
// # Forwarding
//
// Requests marked (leader) are forwarded by a follower to the leader, once:
// a forwarded request (X-Kdnsd-Forwarded-By) that reaches a replica that no
// longer leads gets 503. The follower proxies with its own credentials (its
// token and its TLS certificate as a client certificate) and finds the
// leader's admin address with Config.PeerAdminAddr. With no leader the
// answer is 503 "no leader"; with an unreachable leader it is 502 naming the
// leader and its address. A replica serving plain HTTP (loopback only) never
// calls a peer at a non-loopback address, so its token never crosses the
// network in clear.
//
// # Security
//
// The API is served over HTTPS (Config.TLSCert/TLSKey, reloaded when the
// files change) and authenticated by a bearer token and/or a client
// certificate:
//
//   - Token: Config.TokenFile holds one token per line (blank lines and lines
//     starting with # are ignored); any of them is accepted, which allows a
//     rotation without downtime, and the first is the one this replica sends to
//     its peers. The file is read again whenever it changes (a Secret volume
//     is updated in place); if it becomes unreadable or empty the last good
//     tokens stay in force. A missing or wrong token gets 401 with
//     WWW-Authenticate: Bearer.
//   - Client certificate: with Config.ClientCA, every request must come with a
//     client certificate that chains to a CA in that file (read again when it
//     changes) and allows client authentication. The TLS handshake itself
//     does not check it, so that the client gets an HTTP answer it can
//     explain: no certificate gets 401, a certificate that does not verify
//     (unknown CA, expired, wrong usage) gets 403.
//   - With both configured, both are required.
//
// Peers verify each other's serving certificates against Config.PeerCA, or
// Config.ClientCA when PeerCA is empty, without checking host names (pods are
// reached at changing IPs); with neither, the system roots and the host name
// are checked. Because a replica presents its serving certificate as its
// client certificate to its peers, that certificate must be signed by the
// client CA and allow client authentication (or carry no extended key usage).
//
// NewServer refuses a configuration that would expose the API: on an address
// that is not loopback (127.0.0.0/8, ::1 or "localhost"; an empty host means
// every interface) it requires TLS and at least one of token and client CA.
// Plain HTTP, and serving with no authentication at all, are allowed on
// loopback only; a client CA needs TLS.
//
// # Unix socket
//
// Config.Socket serves the same API over plain HTTP on a unix socket of mode
// 0600, with or without Config.Addr: its authentication is the file
// permission (the user the replica runs as, which kubectl exec into the pod
// has), and tokens and client certificates are not asked for. A socket file
// left by a process that is gone is replaced at start; another file at that
// path, or a socket something answers on, stops Serve. The socket is removed
// at shutdown. A replica with only the socket forwards nothing to the leader
// and does not ask its peers for their status.
//
// # Cross-site requests
//
// A web page in an operator's browser can send requests to a loopback port
// or a kubectl port-forward. So on every listener a request that changes
// state (any method but GET, HEAD and OPTIONS) is refused with 403 when the
// browser marks it cross-origin (Sec-Fetch-Site, or an Origin that is not the
// Host: http.CrossOriginProtection), and when it has neither Content-Type:
// application/json nor the HeaderClient header, which a page cannot send to
// another site without a CORS preflight that this API never allows. The
// Client sends HeaderClient. Over plain HTTP, a request whose Host is not
// localhost or a loopback IP is refused too, whatever its method: that is a
// page that pointed a name of its own at a loopback address (DNS rebinding).
package admin
