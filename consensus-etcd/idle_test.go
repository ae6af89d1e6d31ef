package etcd

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// TestIdleCost measures what idle groups cost: goroutines per node at 200
// groups, then the CPU the process uses over 10 s once 1,000 groups on 3
// engines (loopback, WAL stores, default config) have all quiesced. It
// reports figures and asserts nothing about them.
//
//	go test -run TestIdleCost -v ./consensus-etcd
func TestIdleCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement; skipped under -short")
	}
	const nodes, small, groups = 3, 200, 1000
	runtime.GC()
	base := runtime.NumGoroutine()
	engines := make([]*Engine, nodes)
	for i := range engines {
		f := wal.NewFactory()
		cfg := f.DefaultConfig().(*wal.Config)
		cfg.SegmentSize = 4 << 20
		st, err := f.Create(context.Background(), component.Settings{DataDir: t.TempDir()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(context.Background(), component.Settings{}, *DefaultConfig(), consensus.Params{Node: consensus.NodeID(i + 1), Store: st, Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
		t.Cleanup(func() {
			_ = e.Shutdown(context.Background())
			_ = st.Close()
		})
	}
	for i, e := range engines {
		for j, o := range engines {
			if i != j {
				_ = e.SetPeer(context.Background(), o.node, o.Addr())
			}
		}
	}
	members := []consensus.NodeID{1, 2, 3}
	start := func(from, to int) {
		for g := from; g <= to; g++ {
			for _, e := range engines {
				if _, err := e.StartGroup(context.Background(), consensus.GroupSpec{ID: storage.GroupID(g), Members: members, StateMachine: &kv{}}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	quiesced := func(n int) {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			q := 0
			for _, e := range engines {
				for _, g := range e.snapshotGroups() {
					if g.quiesced.Load() {
						q++
					}
				}
			}
			if q == nodes*n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d replicas quiesced", q, nodes*n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	start(1, small)
	quiesced(small)
	runtime.GC()
	t.Logf("%d groups: %.1f goroutines per node (%d in all for %d nodes, above the %d before)",
		small, float64(runtime.NumGoroutine()-base)/nodes, runtime.NumGoroutine()-base, nodes, base)

	start(small+1, groups)
	quiesced(groups)
	const window = 10 * time.Second
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(window) // a measurement window, not a wait for a condition
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	cpu := func(r *syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	used := cpu(&r1) - cpu(&r0)
	q := 0
	for _, e := range engines {
		for _, g := range e.snapshotGroups() {
			if g.quiesced.Load() {
				q++
			}
		}
	}
	t.Logf("%d groups x %d nodes idle for %v: %v CPU = %.2f%% of one core for the %d nodes together (%.3f%% per node); %d of %d replicas still quiesced at the end",
		groups, nodes, wall.Round(time.Millisecond), used.Round(time.Millisecond), 100*used.Seconds()/wall.Seconds(), nodes, 100*used.Seconds()/wall.Seconds()/nodes, q, nodes*groups)
}
