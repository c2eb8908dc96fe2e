// Package raftauth owns who may speak on kdnsd's Raft plane.
//
// Raft traffic runs over mutual TLS 1.3. Every peer presents a certificate
// signed by the Raft CA, and the certificate names the peer's Raft server ID
// as a DNS subject alternative name "<server-id>.<domain>" (by default
// <pod>.kdnsd-peers.kube-system.svc, the StatefulSet's governing Service).
// When a certificate also lists IP addresses, the address a peer claims (or
// is dialled at) must be one of them. raftnode checks the claim of every RPC
// against the certificate it arrived on (see Plane.CheckClaim).
//
// Certificates come from one of two sources:
//   - files an operator (or cert-manager) provides, watched and reloaded
//     when they change (NewFromFiles);
//   - the CA's own certificate and key, mounted from a Secret that
//     `kdnsd certs init` creates: the replica then issues itself a
//     short-lived leaf for its server ID and pod IP, and a new one before
//     that expires or when the CA files change (NewIssuing).
//
// The package knows nothing of hashicorp/raft's wire format: that is
// raftnode's.
package raftauth
