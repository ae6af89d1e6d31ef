//go:build !linux

package main

import "errors"

var errNoProc = errors.New("memory figures need Linux's /proc")

// procMemory returns the peak and current resident set of a process; only
// Linux has them.
func procMemory(int) (peak, rss int64, err error) { return 0, 0, errNoProc }

// resetPeakRSS resets this process's peak resident set; only on Linux.
func resetPeakRSS() error { return errNoProc }
