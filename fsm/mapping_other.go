//go:build !linux

package fsm

// releaseMapping is a Linux optimisation (mapping_linux.go).
func (s *Store) releaseMapping() {}
