package consensustest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// RunFootprint measures what a broker pays for its groups with a backend:
// goroutines per broker (one engine) at 10, 100 and 500 groups, heap in use
// and process RSS, and the process CPU time over 10 s of idleness once 500
// groups (on 3 engines over loopback, the backend's default config, stores
// from newStore) have all elected. It logs figures and asserts nothing about
// them; every backend calls it, for a side-by-side comparison. It is skipped
// under -short and -race (the figures would be meaningless there).
func RunFootprint(t *testing.T, f consensus.Factory, newStore func(t *testing.T) storage.Store) {
	if testing.Short() {
		t.Skip("measurement; skipped under -short")
	}
	if raceEnabled() {
		t.Skip("measurement; skipped under -race, which would make the figures meaningless (and 1,500 instances cost CI minutes)")
	}
	const nodes = 3
	ctx := context.Background()
	runtime.GC()
	base := runtime.NumGoroutine()
	engines := make([]consensus.Engine, nodes)
	for i := range engines {
		st := newStore(t)
		e, err := f.Create(ctx, component.Settings{}, f.DefaultConfig(),
			consensus.Params{Node: consensus.NodeID(i + 1), Store: st, Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
		t.Cleanup(func() { _ = e.Shutdown(ctx) }) // before newStore's cleanup closes the store
	}
	for i, e := range engines {
		for j, o := range engines {
			if i != j {
				if err := e.SetPeer(ctx, consensus.NodeID(j+1), o.Addr()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	members := []consensus.NodeID{1, 2, 3}
	started := 0
	grow := func(n int) {
		for ; started < n; started++ {
			for _, e := range engines {
				spec := consensus.GroupSpec{ID: storage.GroupID(started + 1), Members: members, StateMachine: idleSM{}}
				if _, err := e.StartGroup(ctx, spec); err != nil {
					t.Fatal(err)
				}
			}
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			elected := 0
			for g := 1; g <= n; g++ {
				known := 0
				for _, e := range engines {
					if grp, ok := e.Group(storage.GroupID(g)); ok && grp.Status().Leader != 0 {
						known++
					}
				}
				if known == nodes {
					elected++
				}
			}
			if elected == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d groups elected a leader known to every replica", elected, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// settle lets transient goroutines end and idle groups quiesce (if the
	// backend does): a measurement window, not a wait for a condition.
	const settle = 5 * time.Second
	for _, n := range []int{10, 100, 500} {
		grow(n)
		time.Sleep(settle)
		runtime.GC()
		per := float64(runtime.NumGoroutine()-base) / nodes
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("%s: %d groups: %.0f goroutines per broker (%.2f per group); heap in use %.1f MiB per broker, process RSS %.1f MiB for %d brokers",
			f.Type(), n, per, per/float64(n), float64(ms.HeapInuse)/nodes/(1<<20), rssMiB(t), int(nodes))
	}
	const idle = 10 * time.Second
	c0 := cpuTime(t)
	time.Sleep(idle)
	used := cpuTime(t) - c0
	t.Logf("%s: 500 groups x 3 engines idle: %v CPU over %v = %.1f%% of one core (%.1f%% per broker)",
		f.Type(), used.Round(time.Millisecond), idle, 100*used.Seconds()/idle.Seconds(), 100*used.Seconds()/idle.Seconds()/nodes)
}

// rssMiB is the process's resident set size (VmRSS), in MiB.
func rssMiB(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return -1
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(fmt.Errorf("getrusage: %w", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raceEnabled tells whether the binary was built with the race detector.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// idleSM is a state machine that keeps nothing.
type idleSM struct{}

func (idleSM) Apply(context.Context, []consensus.Entry) error { return nil }
func (idleSM) Snapshot(context.Context) (consensus.Snapshot, error) {
	return consensus.Snapshot{}, nil
}
func (idleSM) Restore(context.Context, consensus.Snapshot) error       { return nil }
func (idleSM) LeaderChanged(context.Context, consensus.NodeID, uint64) {}
