package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
)

// benchDir is where benchmarks put their files: $CHRONIK_BENCH_DIR, or
// b.TempDir(). It must be on the disk being measured, not a tmpfs.
func benchDir(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if d := os.Getenv("CHRONIK_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		b.Fatalf("%s is on tmpfs: set CHRONIK_BENCH_DIR to a directory on the disk", dir)
	}
	return dir
}

// BenchmarkStore runs the storagetest benchmarks.
func BenchmarkStore(b *testing.B) {
	cfg := *DefaultConfig()
	storagetest.RunBenchmarks(b, func(ctx context.Context, t testing.TB) (storagetest.Harness, error) {
		return &harness{dir: benchDir(b), cfg: cfg}, nil
	})
}

// BenchmarkWrite measures Store.Write with sync=true: W writers, each with
// G groups of its own, one entry of S bytes per Write, and in the same run a
// raw loop (pwrite then fdatasync into a preallocated file in the same
// directory) writing as many bytes per fdatasync as the store's Writes
// carried per fsync. Metrics: MB/s of entry data, syncs/s, KiB/sync, and
// raw-MB/s and vs-raw (store MB/s over raw MB/s) for the raw loop.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 256 << 10} {
		for _, writers := range []int{1, 8, 64} {
			for _, groups := range []int{1, 100} {
				b.Run(fmt.Sprintf("size=%dKiB/writers=%d/groups=%d", size>>10, writers, groups), func(b *testing.B) {
					benchWrite(b, size, writers, groups)
				})
			}
		}
	}
}

func benchWrite(b *testing.B, size, writers, groups int) {
	dir := benchDir(b)
	cfg := *DefaultConfig()
	s, err := Open(context.Background(), filepath.Join(dir, "store"), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	warmUp(b, s)
	next := make([]uint64, writers*groups)
	for g := range next {
		next[g] = 1
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	syncs0 := s.Syncs()
	start := time.Now()
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for k := 0; n.Add(1) <= int64(b.N); k++ {
				g := w*groups + k%groups
				idx := next[g]
				next[g]++
				gw := storage.GroupWrite{Group: storage.GroupID(g + 1), Entries: []storage.Entry{{Index: idx, Term: 1, Data: data}}}
				if idx > 64 && idx%64 == 0 {
					gw.TruncBefore = idx - 32
				}
				if err := s.Write(ctx, []storage.GroupWrite{gw}, true); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	syncs := s.Syncs() - syncs0
	if syncs == 0 {
		syncs = 1
	}
	mbps := float64(b.N) * float64(size) / elapsed.Seconds() / 1e6
	perSync := int64(b.N) * int64(size) / int64(syncs)
	b.ReportMetric(float64(syncs)/elapsed.Seconds(), "syncs/s")
	b.ReportMetric(float64(perSync)/1024, "KiB/sync")
	raw := rawLoop(b, dir, perSync, int(syncs))
	b.ReportMetric(raw, "raw-MB/s")
	b.ReportMetric(mbps/raw, "vs-raw")
}

// rawLoop writes n chunks of size bytes, each followed by fdatasync, into a
// preallocated (zero-filled) file in dir, and returns MB/s.
func rawLoop(b *testing.B, dir string, size int64, n int) float64 {
	b.Helper()
	const fileSize = 128 << 20
	size = max(size, 1)
	f, err := os.OpenFile(filepath.Join(dir, "raw"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := fillZeros(f, 0, fileSize); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fsync(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i * 3)
	}
	n = max(n, 50)
	var off int64
	start := time.Now()
	for range n {
		if off+size > fileSize {
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
		off += size
	}
	return float64(n) * float64(size) / time.Since(start).Seconds() / 1e6
}

// warmUp runs s into its steady state before measuring: enough data
// written (and truncated) that reclaimed segment files wait to be recycled,
// as in a broker that has been up for a while. Without it the measurement
// includes zero-filling the first segments.
func warmUp(b *testing.B, s *Store) {
	b.Helper()
	ctx := context.Background()
	const g = storage.GroupID(1 << 40)
	data := make([]byte, 1<<20)
	n := uint64(int64(s.cfg.RecycleSegments+2) * s.cfg.SegmentSize / int64(len(data)))
	for i := uint64(1); i <= n; i++ {
		if err := s.Write(ctx, []storage.GroupWrite{{Group: g, Entries: []storage.Entry{{Index: i, Term: 1, Data: data}}, TruncBefore: i}}, i == n); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Drop(ctx, g); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		s.recMu.Lock()
		r := len(s.recycled)
		s.recMu.Unlock()
		if r >= s.cfg.RecycleSegments-1 || time.Now().After(deadline) {
			break
		}
		s.kickReclaim()
		time.Sleep(10 * time.Millisecond)
	}
	res := <-s.next // the next segment prepared
	s.next <- res
}
