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
					benchWrite(b, *DefaultConfig(), size, writers, groups)
				})
			}
		}
	}
}

// BenchmarkWriteSyncMarks is BenchmarkWrite with Config.SyncMarks on (one
// more pwrite per fsync), for the small writes where it could show.
func BenchmarkWriteSyncMarks(b *testing.B) {
	cfg := *DefaultConfig()
	cfg.SyncMarks = true
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("size=1KiB/writers=%d/groups=1", writers), func(b *testing.B) {
			benchWrite(b, cfg, 1<<10, writers, 1)
		})
	}
}

// phases is how many times benchWrite alternates between the store and the
// raw loop, so that both see the same disk (it is shared, and its speed
// drifts).
const phases = 4

func benchWrite(b *testing.B, cfg Config, size, writers, groups int) {
	dir := benchDir(b)
	s, err := Open(context.Background(), filepath.Join(dir, "store"), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw := newRawFile(b, dir)
	defer raw.f.Close()
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
	var storeTime, rawTime time.Duration
	var syncs uint64
	var rawBytes int64
	for phase := range phases {
		ops := b.N / phases
		if phase == phases-1 {
			ops = b.N - ops*(phases-1)
		}
		syncs0 := s.Syncs()
		start := time.Now()
		var n atomic.Int64
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for k := 0; n.Add(1) <= int64(ops); k++ {
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
		storeTime += time.Since(start)
		b.StopTimer()
		ps := max(s.Syncs()-syncs0, 1)
		syncs += ps
		perSync := int64(ops) * int64(size) / int64(ps)
		d, n2 := raw.loop(b, perSync, int(ps))
		rawTime += d
		rawBytes += n2
		b.StartTimer()
	}
	b.StopTimer()
	mbps := float64(b.N) * float64(size) / storeTime.Seconds() / 1e6
	rawMBps := float64(rawBytes) / rawTime.Seconds() / 1e6
	b.ReportMetric(float64(syncs)/storeTime.Seconds(), "syncs/s")
	b.ReportMetric(float64(int64(b.N)*int64(size)/int64(syncs))/1024, "KiB/sync")
	b.ReportMetric(rawMBps, "raw-MB/s")
	b.ReportMetric(mbps/rawMBps, "vs-raw")
}

// rawFile is the baseline: a preallocated (zero-filled) file written with
// pwrite then fdatasync, as fast as the disk allows.
type rawFile struct {
	f   *os.File
	off int64
	buf []byte
}

const rawFileSize = 128 << 20

func newRawFile(b *testing.B, dir string) *rawFile {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "raw"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	if err := fillZeros(f, 0, rawFileSize); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fsync(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
	return &rawFile{f: f}
}

// loop writes n chunks of size bytes, each followed by fdatasync, and
// returns the time it took and the bytes written.
func (r *rawFile) loop(b *testing.B, size int64, n int) (time.Duration, int64) {
	b.Helper()
	size = max(size, 1)
	if int64(len(r.buf)) < size {
		r.buf = make([]byte, size)
		for i := range r.buf {
			r.buf[i] = byte(i * 3)
		}
	}
	n = max(n, 20)
	start := time.Now()
	for range n {
		if r.off+size > rawFileSize {
			r.off = 0
		}
		if _, err := r.f.WriteAt(r.buf[:size], r.off); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(r.f); err != nil {
			b.Fatal(err)
		}
		r.off += size
	}
	return time.Since(start), int64(n) * size
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
