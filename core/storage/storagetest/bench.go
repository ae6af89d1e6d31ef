package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// RunBenchmarks measures the store newHarness opens:
//
//   - Write/size=S/writers=W/groups=G: W goroutines each own G groups and
//     append one entry of S bytes per Write with sync=true, round robin over
//     their groups (so a store holds W*G groups). Each op is one Write;
//     b.SetBytes(S) makes MB/s show. Logs are truncated as they go so that
//     they stay short, as retention would keep them.
//   - WriteBatch/size=S/groups=100: one goroutine, one entry for each of 100
//     groups per synced Write, the pattern of a multi-raft worker.
//   - Entries/size=S: readers in parallel (b.RunParallel) reading 16
//     entries from random places of a 1024-entry log.
func RunBenchmarks(b *testing.B, newHarness HarnessMaker) {
	sizes := []int{1 << 10, 16 << 10, 256 << 10}
	for _, size := range sizes {
		for _, writers := range []int{1, 8, 64} {
			for _, groups := range []int{1, 100} {
				name := fmt.Sprintf("Write/size=%s/writers=%d/groups=%d", fmtSize(size), writers, groups)
				b.Run(name, func(b *testing.B) { benchWrite(b, newHarness, size, writers, groups) })
			}
		}
	}
	for _, size := range sizes[:2] {
		b.Run(fmt.Sprintf("WriteBatch/size=%s/groups=100", fmtSize(size)), func(b *testing.B) { benchWriteBatch(b, newHarness, size, 100) })
	}
	for _, size := range sizes[:2] {
		b.Run(fmt.Sprintf("Entries/size=%s", fmtSize(size)), func(b *testing.B) { benchEntries(b, newHarness, size) })
	}
}

func fmtSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// benchStore opens a store for b, closed with its harness when b ends.
func benchStore(b *testing.B, newHarness HarnessMaker) storage.Store {
	b.Helper()
	return openStore(b, makeHarness(b, newHarness))
}

// keep is how many entries a benchmark leaves in a log before truncating.
const keep = 64

func benchWrite(b *testing.B, newHarness HarnessMaker, size, writers, groups int) {
	s := benchStore(b, newHarness)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var next atomic.Int64 // ops handed out
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	n := int64(b.N)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			last := make([]uint64, groups)
			ws := make([]storage.GroupWrite, 1)
			es := make([]storage.Entry, 1)
			for i := 0; next.Add(1) <= n; i++ {
				k := i % groups
				last[k]++
				es[0] = storage.Entry{Index: last[k], Term: 1, Data: data}
				ws[0] = storage.GroupWrite{Group: storage.GroupID(w*groups + k + 1), Entries: es}
				if last[k]%keep == 0 {
					ws[0].TruncBefore = last[k] - keep/2
				}
				if err := s.Write(context.Background(), ws, true); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatalf("Write: %v", *err)
	}
}

func benchWriteBatch(b *testing.B, newHarness HarnessMaker, size, groups int) {
	s := benchStore(b, newHarness)
	data := make([]byte, size)
	b.SetBytes(int64(size * groups))
	b.ReportAllocs()
	ws := make([]storage.GroupWrite, groups)
	es := make([]storage.Entry, groups)
	b.ResetTimer()
	for i := range b.N {
		idx := uint64(i + 1)
		for g := range ws {
			es[g] = storage.Entry{Index: idx, Term: 1, Data: data}
			ws[g] = storage.GroupWrite{Group: storage.GroupID(g + 1), Entries: es[g : g+1]}
			if idx%keep == 0 {
				ws[g].TruncBefore = idx - keep/2
			}
		}
		if err := s.Write(context.Background(), ws, true); err != nil {
			b.Fatalf("Write: %v", err)
		}
	}
}

func benchEntries(b *testing.B, newHarness HarnessMaker, size int) {
	const (
		entries = 1024
		batch   = 16
	)
	s := benchStore(b, newHarness)
	data := make([]byte, size)
	for lo := uint64(1); lo <= entries; lo += 64 {
		es := make([]storage.Entry, 64)
		for i := range es {
			es[i] = storage.Entry{Index: lo + uint64(i), Term: 1, Data: data}
		}
		if err := s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: es}}, false); err != nil {
			b.Fatalf("Write: %v", err)
		}
	}
	l := getLog(b, s, 1)
	b.SetBytes(int64(size * batch))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			lo := 1 + uint64(rng.IntN(entries-batch+1))
			es, err := l.Entries(lo, lo+batch, 0)
			if err != nil || len(es) != batch {
				b.Errorf("Entries(%d, %d) = %d entries, %v", lo, lo+batch, len(es), err)
				return
			}
		}
	})
}
