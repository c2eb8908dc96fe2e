//go:build !linux

package boltmap

import bolt "go.etcd.io/bbolt"

// Release is a Linux optimisation (release_linux.go): elsewhere the pages
// stay until the kernel reclaims them.
func Release(*bolt.DB) error { return nil }
