package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procMemory returns the peak resident set (VmHWM) and the current one
// (VmRSS), in bytes, of process pid (0: this process), from
// /proc/<pid>/status.
func procMemory(pid int) (peak, rss int64, err error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		if k == "VmHWM" {
			peak = kb << 10
		} else {
			rss = kb << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("%s: no VmHWM or VmRSS", path)
	}
	return peak, rss, nil
}

// resetPeakRSS sets this process's VmHWM to its current RSS (Linux 4.0 and
// later), so that a later procMemory gives the peak since now.
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
