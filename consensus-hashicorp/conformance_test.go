package hashicorp_test

import (
	"context"
	"testing"
	"time"

	hashicorp "github.com/chronik-go/chronik/consensus-hashicorp"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus/consensustest"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
	memory "github.com/chronik-go/chronik/storage-memory"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// backend is the hashicorp engine with timers as short as its per-group
// cost allows on two cores under -race: the leader of each group heartbeats
// each follower every HeartbeatTimeout/10 and sends it an append every
// CommitTimeout, so with 200 groups (ManyGroups) a 100ms heartbeat timeout
// means 40k heartbeats a second and the test collapses. A 400ms heartbeat
// and election timeout, randomised by the library up to 800ms.
func backend() consensustest.Backend {
	return consensustest.Backend{
		Name:    "hashicorp",
		Factory: hashicorp.NewFactory(),
		Config: func() component.Config {
			c := hashicorp.DefaultConfig()
			c.HeartbeatTimeout = 400 * time.Millisecond
			c.ElectionTimeout = 400 * time.Millisecond
			c.LeaderLeaseTimeout = 200 * time.Millisecond
			c.CommitTimeout = 100 * time.Millisecond
			c.RPCTimeout = 2 * time.Second
			return c
		},
		ElectionTimeout: 800 * time.Millisecond,
	}
}

// memHarness opens a new in-memory store; the suite keeps it open across
// engine restarts (the store is not persistent).
type memHarness struct{}

func (memHarness) Open(ctx context.Context) (storage.Store, error) {
	f := memory.NewFactory()
	return f.Create(ctx, component.Settings{}, f.DefaultConfig())
}

func (memHarness) Close() {}

func memStores(context.Context, testing.TB) (storagetest.Harness, error) { return memHarness{}, nil }

// walHarness opens the on-disk store in one directory of the test.
type walHarness struct{ dir string }

func (h walHarness) Open(ctx context.Context) (storage.Store, error) {
	f := wal.NewFactory()
	cfg := f.DefaultConfig().(*wal.Config)
	cfg.SegmentSize = 4 << 20 // many nodes per test: keep preallocation small
	return f.Create(ctx, component.Settings{DataDir: h.dir}, cfg)
}

func (walHarness) Close() {}

func walStores(_ context.Context, t testing.TB) (storagetest.Harness, error) {
	return walHarness{dir: t.TempDir()}, nil
}

func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		consensustest.Run(t, backend(), memStores, consensustest.Capabilities{})
	})
	t.Run("wal", func(t *testing.T) {
		consensustest.Run(t, backend(), walStores, consensustest.Capabilities{PersistentStore: true})
	})
}

func BenchmarkConformance(b *testing.B) {
	b.Run("memory", func(b *testing.B) { consensustest.RunBenchmarks(b, backend(), memStores) })
	b.Run("wal", func(b *testing.B) { consensustest.RunBenchmarks(b, backend(), walStores) })
}
