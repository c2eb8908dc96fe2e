// Package boltmap gives back the pages of a bbolt file that a process has
// mapped. bbolt reads its file through a shared read-only map and writes it
// with pwrite, so the pages it has read stay counted in the process's RSS
// until the file is mapped anew (as it grows) or the kernel reclaims them,
// though nothing reads most of them again: a load reads every record, a
// write reads the pages on its keys' paths, a Raft log is read as it is
// appended to, replicated, applied and compacted. kdnsd has two bbolt
// files, the record store (fsm) and the Raft log (raftnode).
package boltmap
