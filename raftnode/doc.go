// Package raftnode owns kdnsd's Raft group: it runs hashicorp/raft with
// raft-boltdb log and stable stores, a file snapshot store and a TCP
// transport, drives the durable fsm.Store as the state machine, and tells
// the rest of kdnsd when this replica leads.
//
// Every request that reaches the transport is checked before hashicorp/raft
// reads it (guard.go): over mutual TLS its claimed server ID and address
// must be the ones its certificate names (raftauth), and a replica that
// started without Raft state (admission.go) answers no vote, pre-vote or
// election request and asks for none until the leader has admitted it; its
// incarnation and admission are persisted with the Raft stores, so a wiped
// volume makes a new member.
//
// Leadership is exposed as a level, not as a stream of events: WhileLeader
// runs a function for each leadership term and waits for it to return before
// it could start another, and it re-reads Raft's state after every
// notification and on a timer. A missed or duplicated notification therefore
// cannot leave two watchers running, or none while this replica leads.
package raftnode
