//go:build !linux

package main

// isTmpfs reports whether dir is on tmpfs; only Linux is checked.
func isTmpfs(string) (bool, error) { return false, nil }
