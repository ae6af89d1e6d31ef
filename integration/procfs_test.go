package integration

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// What the tests learn of other processes, from Linux's /proc.

// procCmdline is a process's command line, its arguments separated by
// spaces.
func procCmdline(pid int) ([]byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), nil
}

// procStat returns a process's state (R, S, Z, ...) and its parent's pid.
func procStat(pid int) (state byte, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return f[0][0], ppid, err
}

// procParent is a process's parent's pid.
func procParent(pid int) (int, error) {
	_, ppid, err := procStat(pid)
	return ppid, err
}

// procAlive reports whether a process exists and has not exited (a zombie,
// waiting to be reaped, has exited).
func procAlive(pid int) bool {
	state, _, err := procStat(pid)
	return err == nil && state != 'Z' && state != 'X'
}

// procChildren lists the live children of parent whose command line
// contains s.
func procChildren(parent int, s string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, err := procStat(pid); err != nil || ppid != parent || !procAlive(pid) {
			continue
		}
		if cmd, err := procCmdline(pid); err == nil && bytes.Contains(cmd, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out, nil
}
