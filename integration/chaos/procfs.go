package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// osProc is a process as /proc shows it (Linux only): its pid and its
// start time, which tells it apart from a later process given the same
// pid.
type osProc struct {
	pid   int
	start uint64 // field 22 of /proc/<pid>/stat, in clock ticks since boot
}

// procStat reads a process's parent pid, process group, state and start
// time from /proc/<pid>/stat.
func procStat(pid int) (ppid, pgrp int, state byte, start uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[2] field 5 (pgrp),
	// f[19] field 22 (starttime).
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	if pgrp, err = strconv.Atoi(f[2]); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("/proc/%d/stat: pgrp: %w", pid, err)
	}
	if start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return ppid, pgrp, f[0][0], start, nil
}

// children lists the live processes whose parent is pid.
func children(pid int) ([]osProc, error) {
	return processes(func(ppid, _ int) bool { return ppid == pid })
}

// groupMembers lists the live processes of process group pgid, which
// stay in it when their parent dies.
func groupMembers(pgid int) ([]osProc, error) {
	return processes(func(_, pgrp int) bool { return pgrp == pgid })
}

// processes lists the live processes whose parent pid and process group
// match.
func processes(match func(ppid, pgrp int) bool) ([]osProc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("chaos: list processes: %w", err)
	}
	var out []osProc
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, pgrp, state, start, err := procStat(p)
		if err != nil || !match(ppid, pgrp) || state == 'Z' || state == 'X' {
			continue // gone since the listing, or no match
		}
		out = append(out, osProc{pid: p, start: start})
	}
	return out, nil
}

// cmdline is the process's arguments joined by spaces.
func (p osProc) cmdline() string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// exe is the executable the process runs.
func (p osProc) exe() string {
	s, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.pid))
	return s
}

// gone reports whether the process has ended: no longer in /proc, a
// zombie (it holds no files then; its new parent reaps it in its own
// time), or its pid taken by another process.
func (p osProc) gone() bool {
	_, _, state, start, err := procStat(p.pid)
	return err != nil || state == 'Z' || state == 'X' || start != p.start
}

// waitGone polls until every one of procs has ended or limit passes, and
// returns those still running.
func waitGone(ctx context.Context, procs []osProc, limit time.Duration) []osProc {
	deadline := time.Now().Add(limit)
	for {
		var left []osProc
		for _, p := range procs {
			if !p.gone() {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return left
		}
		sleep(ctx, 20*time.Millisecond)
		procs = left
	}
}

// isStoragePlugin reports whether p is a storage plugin process: chronik
// serving a built-in store (`chronik plugin serve storage <type>`) or the
// external plugin executable path (empty: none).
func isStoragePlugin(p osProc, path string) bool {
	if strings.Contains(p.cmdline(), "plugin serve storage") {
		return true
	}
	if path == "" {
		return false
	}
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		want = path
	}
	return p.exe() == want
}

// isConsensusPlugin reports whether p is a consensus plugin process:
// chronik serving a built-in engine (`chronik plugin serve consensus
// <type>`).
func isConsensusPlugin(p osProc) bool {
	return strings.Contains(p.cmdline(), "plugin serve consensus")
}
