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
