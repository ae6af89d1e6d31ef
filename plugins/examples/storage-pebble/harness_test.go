package pebblestore

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/plugins/plugintest"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
)

func TestMain(m *testing.M) {
	// The subprocess mode of TestPluginModes re-executes this binary as
	// the plugin.
	plugintest.ServeIfChild(NewFactory())
	goleak.VerifyTestMain(m)
}

// diskHarness opens stores in a temporary directory on disk.
type diskHarness struct {
	dir string
	cfg Config
}

func diskMaker(cfg Config) storagetest.HarnessMaker {
	return func(ctx context.Context, t testing.TB) (storagetest.Harness, error) {
		return &diskHarness{dir: t.TempDir(), cfg: cfg}, nil
	}
}

func (h *diskHarness) Open(ctx context.Context) (storage.Store, error) {
	s, err := Open(ctx, h.dir, h.cfg, nil)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (h *diskHarness) Close() {}

// memHarness opens stores on an in-memory file system that keeps track of
// what was synced, so that it can be crashed.
type memHarness struct {
	fs         *vfs.MemFS
	cfg        Config
	flushEvery int // see flushingStore; 0: never
}

var _ storagetest.Crasher = (*memHarness)(nil)

const memDir = "/chronik"

func memMaker(cfg Config, flushEvery int) storagetest.HarnessMaker {
	return func(ctx context.Context, t testing.TB) (storagetest.Harness, error) {
		return &memHarness{fs: vfs.NewCrashableMem(), cfg: cfg, flushEvery: flushEvery}, nil
	}
}

func (h *memHarness) Open(ctx context.Context) (storage.Store, error) {
	s, err := open(ctx, h.fs, memDir, h.cfg, nil)
	if err != nil {
		return nil, err
	}
	if h.flushEvery > 0 {
		return &flushingStore{Store: s, every: h.flushEvery}, nil
	}
	return s, nil
}

func (h *memHarness) Close() {}

// CrashCopy clones the file system as a crash could leave it: everything
// synced, and each unsynced 4 KiB block and directory entry kept with a
// probability drawn from rng (0 to 100 %). The open store is not disturbed.
func (h *memHarness) CrashCopy(_ context.Context, _ storage.Store, rng *rand.Rand) (storagetest.Harness, error) {
	clone := h.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	return &memHarness{fs: clone, cfg: h.cfg, flushEvery: h.flushEvery}, nil
}

// flushingStore starts a memtable flush every few Writes, so that crash
// images hold sstables, range tombstones in them and MANIFEST updates, and
// sometimes a flush in progress.
type flushingStore struct {
	*Store
	every, n int
}

func (s *flushingStore) Write(ctx context.Context, ws []storage.GroupWrite, sync bool) error {
	if err := s.Store.Write(ctx, ws, sync); err != nil {
		return err
	}
	if s.n++; s.n%s.every == 0 {
		if _, err := s.db.AsyncFlush(); err != nil {
			return err
		}
	}
	return nil
}

func testConfig() Config {
	c := *DefaultConfig()
	c.CacheSize = 8 << 20
	return c
}

func TestConformance(t *testing.T) {
	cfg := testConfig()
	storagetest.RunConformanceTests(t, diskMaker(cfg), storagetest.Capabilities{Persistent: true, MaxEntrySize: MaxWriteSize / 2})
}

// TestConformanceSmallMemTable runs the suite with the smallest memtable,
// so that the large entries take Pebble's large-batch path and memtables
// are flushed to sstables as it goes.
func TestConformanceSmallMemTable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := testConfig()
	cfg.MemTableSize = MinMemTableSize
	storagetest.RunConformanceTests(t, memMaker(cfg, 0), storagetest.Capabilities{Persistent: true, MaxEntrySize: MaxWriteSize / 2})
}

func crashIterations(t *testing.T, n int) int {
	if v := os.Getenv("PEBBLE_CRASH_ITERATIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("PEBBLE_CRASH_ITERATIONS=%q: %v", v, err)
		}
	} else if testing.Short() {
		n /= 4
	}
	return n
}

func TestCrash(t *testing.T) {
	storagetest.RunCrashTests(t, memMaker(testConfig(), 0), crashIterations(t, 200))
}

func TestCrashWithFlushes(t *testing.T) {
	storagetest.RunCrashTests(t, memMaker(testConfig(), 3), crashIterations(t, 60))
}

func BenchmarkStore(b *testing.B) {
	storagetest.RunBenchmarks(b, diskMaker(*DefaultConfig()))
}
