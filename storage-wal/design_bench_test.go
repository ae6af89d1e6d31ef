package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkLayout is the benchmark behind the choice of layout (see
// docs/ARCHITECTURE.md, Storage): one shared WAL per broker, against a
// shared WAL plus per-partition segment files written behind it (Kafka-style
// files, no fsync on them). Each op is one synced batch of batch bytes in
// the WAL (pwrite + fdatasync into preallocated space, what Store.Write
// does at best). With partitions > 0 the same bytes are also appended to
// that many partition files, and a background flusher writes them back
// (sync_file_range + fdatasync every 64 MiB, as the kernel's writeback must
// in steady state: page cache only hides the second write for a while).
func BenchmarkLayout(b *testing.B) {
	for _, batch := range []int{64 << 10, 1 << 20} {
		for _, partitions := range []int{0, 100} {
			name := "shared-wal"
			if partitions > 0 {
				name = fmt.Sprintf("wal+%d-partition-files", partitions)
			}
			b.Run(fmt.Sprintf("batch=%dKiB/%s", batch>>10, name), func(b *testing.B) {
				benchLayout(b, batch, partitions)
			})
		}
	}
}

func benchLayout(b *testing.B, batch, partitions int) {
	dir := benchDir(b)
	const walSize = 512 << 20
	wal, err := os.OpenFile(filepath.Join(dir, "wal"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer wal.Close()
	if err := fillZeros(wal, 0, walSize); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fsync(int(wal.Fd())); err != nil {
		b.Fatal(err)
	}
	parts := make([]*os.File, partitions)
	for i := range parts {
		if parts[i], err = os.OpenFile(filepath.Join(dir, fmt.Sprintf("p%03d", i)), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			b.Fatal(err)
		}
		defer parts[i].Close()
	}
	buf := make([]byte, batch)
	for i := range buf {
		buf[i] = byte(i)
	}
	var flushMu sync.Mutex
	var flushWG sync.WaitGroup
	flush := func() {
		defer flushWG.Done()
		flushMu.Lock()
		defer flushMu.Unlock()
		for _, p := range parts {
			_ = unix.SyncFileRange(int(p.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		}
		for _, p := range parts {
			_ = unix.Fdatasync(int(p.Fd()))
		}
	}
	b.SetBytes(int64(batch))
	b.ResetTimer()
	start := time.Now()
	var off, sincFlush int64
	for range b.N {
		if off+int64(batch) > walSize {
			off = 0
		}
		if _, err := wal.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(wal); err != nil {
			b.Fatal(err)
		}
		off += int64(batch)
		if partitions > 0 {
			piece := batch / partitions
			for _, p := range parts {
				if _, err := p.Write(buf[:piece]); err != nil {
					b.Fatal(err)
				}
			}
			sincFlush += int64(batch)
			if sincFlush >= 64<<20 {
				sincFlush = 0
				flushWG.Add(1)
				go flush()
			}
		}
	}
	flushWG.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "syncs/s")
}
