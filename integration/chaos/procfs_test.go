package chaos

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProcChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	path, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(path, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	kids, err := children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(kids, func(p osProc) bool { return p.pid == cmd.Process.Pid })
	if i < 0 {
		t.Fatalf("children of %d = %v, want %d among them", os.Getpid(), kids, cmd.Process.Pid)
	}
	p := kids[i]
	if got := p.cmdline(); !strings.HasSuffix(got, "sleep 30") {
		t.Errorf("cmdline %q, want it to end with sleep 30", got)
	}
	if !isStoragePlugin(p, path) || isStoragePlugin(p, "") {
		t.Errorf("isStoragePlugin by executable %s: %v, by nothing: %v; want true, false", path, isStoragePlugin(p, path), isStoragePlugin(p, ""))
	}
	if isConsensusPlugin(p) {
		t.Errorf("isConsensusPlugin(%q) = true", p.cmdline())
	}
	if p.gone() {
		t.Fatal("a running child is gone")
	}
	// Killed but not yet reaped: a zombie, which counts as gone.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if left := waitGone(context.Background(), []osProc{p}, 5*time.Second); len(left) > 0 {
		t.Errorf("a killed child is not gone after 5 s")
	}
}

// A plugin process is told apart by its command line: chronik re-executes
// itself as `chronik plugin serve <kind> <type>`.
func TestPluginByCmdline(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		kind               string
		storage, consensus bool
	}{
		{"storage", true, false},
		{"consensus", false, true},
	} {
		// "; :" keeps sh from exec'ing sleep, so that the process keeps
		// its command line.
		cmd := exec.Command(sh, "-c", "sleep 30; :", "chronik", "plugin", "serve", tc.kind, "etcd")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		p := osProc{pid: cmd.Process.Pid}
		// Start returns once the exec has begun; the command line is
		// there a moment later.
		for deadline := time.Now().Add(5 * time.Second); p.cmdline() == "" && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if got := isStoragePlugin(p, ""); got != tc.storage {
			t.Errorf("isStoragePlugin(%q) = %v, want %v", p.cmdline(), got, tc.storage)
		}
		if got := isConsensusPlugin(p); got != tc.consensus {
			t.Errorf("isConsensusPlugin(%q) = %v, want %v", p.cmdline(), got, tc.consensus)
		}
	}
}
