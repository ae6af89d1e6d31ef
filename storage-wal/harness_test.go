package wal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

func TestMain(m *testing.M) {
	// The subprocess mode of TestPluginModes re-executes this binary as
	// the plugin.
	plugintest.ServeIfChild(NewFactory())
	goleak.VerifyTestMain(m)
}

// harness opens stores in one directory with one config.
type harness struct {
	t   testing.TB
	dir string
	cfg Config
}

var _ storagetest.Crasher = (*harness)(nil)

func maker(cfg Config) storagetest.HarnessMaker {
	return func(ctx context.Context, t testing.TB) (storagetest.Harness, error) {
		return &harness{t: t, dir: t.TempDir(), cfg: cfg}, nil
	}
}

func (h *harness) Open(ctx context.Context) (storage.Store, error) {
	s, err := Open(ctx, h.dir, h.cfg, nil)
	if (err != nil || os.Getenv("WAL_DUMP") != "") && h.t != nil {
		dumpDir(h.t, h.dir) // to debug a failure
	}
	return s, err
}

func (h *harness) Close() {}

// CrashCopy copies the store's directory as a crash could leave it: the
// active segment is durable up to the last completed sync; every other file
// was synced whole (sealed segments, prepared segments, recycled ones) and
// its directory entry too, except a segment still being prepared.
func (h *harness) CrashCopy(ctx context.Context, st storage.Store, rng *rand.Rand) (storagetest.Harness, error) {
	s, ok := st.(*Store)
	if !ok {
		return nil, fmt.Errorf("CrashCopy of a %T", st)
	}
	s.syncMu.Lock()
	defer s.passLead()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	active := s.active()
	durable := int64(s.syncPoint(active))
	dst := filepath.Join(filepath.Dir(h.dir), fmt.Sprintf("crash-%d", rng.Uint64()))
	if os.Getenv("WAL_DUMP") != "" {
		h.t.Logf("crash copy: active %s durable %d, off %d, synced %x", active.path, durable, s.off, s.synced.Load())
		dumpDir(h.t, h.dir)
	}
	err := storagetest.CrashDir(dst, h.dir, func(rel string) (int64, bool) {
		if seq, ok := parseName(rel, segSuffix); ok {
			switch {
			case seq == active.seq:
				return durable, true
			case seq > active.seq: // being prepared
				return 0, false
			}
			return 1 << 62, true
		}
		if _, ok := parseName(rel, recycleSuffix); ok {
			return 1 << 62, true
		}
		return 0, false
	}, rng)
	if err != nil {
		return nil, err
	}
	return &harness{t: h.t, dir: dst, cfg: h.cfg}, nil
}

func testConfig(segSize int64) Config {
	c := *DefaultConfig()
	c.SegmentSize = segSize
	return c
}

func TestConformance(t *testing.T) {
	for _, segSize := range []int64{4 << 20, 16 << 10} {
		cfg := testConfig(segSize)
		t.Run(fmt.Sprintf("segment=%d", segSize), func(t *testing.T) {
			storagetest.RunConformanceTests(t, maker(cfg), storagetest.Capabilities{Persistent: true, MaxEntrySize: cfg.MaxEntrySize()})
		})
	}
}

func TestCrash(t *testing.T) {
	n := 300
	if v := os.Getenv("WAL_CRASH_ITERATIONS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	if testing.Short() {
		n = 50
	}
	for _, tc := range []struct {
		segSize int64
		rewrite int
	}{{4 << 10, 0}, {4 << 10, 2}, {1 << 20, 16}} {
		cfg := testConfig(tc.segSize)
		cfg.RewriteSegments = tc.rewrite
		t.Run(fmt.Sprintf("segment=%d/rewrite=%d", tc.segSize, tc.rewrite), func(t *testing.T) {
			storagetest.RunCrashTests(t, maker(cfg), n)
		})
	}
}
