package wal

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

// pluginMode is one way of reaching the store: directly, or through the
// plugin protocol (in this process or as a subprocess: this test binary
// re-executed, see TestMain).
type pluginMode struct {
	name       string
	subprocess bool // else served in this process over a Unix socket (the shim)
	unary      bool // StorageOptions.Unary: one unary call per Write and Entries
	mtls       bool // Command.AutoMTLS
	tailCache  bool // the host's tail cache (StorageOptions.TailCache) on
	direct     bool // no plugin: the *Store itself
}

// pluginModes are measured in this order; direct comes first, as the
// baseline of the vs-direct ratios.
var pluginModes = []pluginMode{
	{name: "direct", direct: true},
	{name: "shim"},
	{name: "stream", subprocess: true},
	{name: "unary", subprocess: true, unary: true},
	{name: "stream-mtls", subprocess: true, mtls: true},
	{name: "stream-tailcache", subprocess: true, tailCache: true},
}

// open opens the store in dir with cfg the way m says.
func (m pluginMode) open(tb testing.TB, dir string, cfg Config) storage.Store {
	tb.Helper()
	ctx := context.Background()
	if m.direct {
		s, err := Open(ctx, dir, cfg, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	o := plugins.StorageOptions{
		Type:    Type,
		Config:  map[string]any{"segment_size": cfg.SegmentSize, "fsync": string(cfg.Fsync)},
		DataDir: dir,
		Unary:   m.unary,
	}
	if !m.tailCache {
		o.TailCache = -1
	}
	if m.subprocess {
		exe, err := os.Executable()
		if err != nil {
			tb.Fatal(err)
		}
		o.Command = plugins.Command{
			Path:     exe,
			Args:     []string{"-test.run=^$"},
			Env:      []string{plugintest.ChildEnv + "=" + string(Type)},
			AutoMTLS: m.mtls,
		}
	} else {
		o.InProcess = NewFactory()
	}
	s, err := plugins.OpenStorage(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// pluginOp is one measured operation. Each op reports ops/s (Writes or
// Entries calls per second) and MB/s of entry data.
type pluginOp struct {
	name string
	run  func(b *testing.B, s storage.Store, groups func(n int) []storage.GroupID)
}

var pluginOps = []pluginOp{
	{"write-1KiB/writers=1", func(b *testing.B, s storage.Store, g func(int) []storage.GroupID) {
		benchPluginWrite(b, s, g(1))
	}},
	{"write-1KiB/writers=64", func(b *testing.B, s storage.Store, g func(int) []storage.GroupID) {
		benchPluginWrite(b, s, g(64))
	}},
	{"batch-64x1KiB/groups=64", func(b *testing.B, s storage.Store, g func(int) []storage.GroupID) {
		benchPluginBatch(b, s, g(64))
	}},
	{"entries-64KiB/readers=1", func(b *testing.B, s storage.Store, g func(int) []storage.GroupID) {
		benchPluginEntries(b, s, g(1)[0], 1, 64)
	}},
	{"entries-64KiB/readers=8", func(b *testing.B, s storage.Store, g func(int) []storage.GroupID) {
		benchPluginEntries(b, s, g(1)[0], 8, 64)
	}},
	{"entries-1KiB/readers=1", func(b *testing.B, s storage.Store, g func(int) []storage.GroupID) {
		benchPluginEntries(b, s, g(1)[0], 1, 1)
	}},
}

// BenchmarkPlugin measures the WAL store served as a storage plugin, in
// each of pluginModes, against the store itself (mode=direct):
//
//   - write-1KiB: Write of one 1 KiB entry with sync=true, from 1 and 64
//     concurrent writers, each on a group of its own (the store's group
//     commit shares one fsync between concurrent Writes);
//   - batch-64x1KiB: one writer, each Write one 1 KiB entry in each of 64
//     groups, sync=true;
//   - entries-64KiB: Entries of 64 entries of 1 KiB (in the page cache),
//     from 1 and 8 concurrent readers; entries-1KiB: of one entry, which
//     is about the round trip of a call.
//
// The plugin modes: shim (served in this process over a Unix socket),
// stream (a subprocess, Write and Entries over the two streams), unary
// (a subprocess, one unary call each: StorageOptions.Unary), stream-mtls
// (stream with go-plugin's AutoMTLS), all without the host's tail cache so
// that every Entries crosses the protocol; and stream-tailcache, stream
// with the default tail cache, as a broker runs it (its Entries of what
// was just written never leave the host).
//
// Metrics: ops/s (calls), MB/s of entry data, syncs/s and KiB/sync for the
// writes (KiB/sync shows whether group commit survives the protocol), and
// vs-direct: ops/s over mode=direct's in the same run (present only when
// mode=direct ran first, so not with a -bench that filters it out).
//
// Every mode opens once, on one directory run into its steady state first
// (so that no measurement includes zero-filling a segment), and keeps its
// store open across its ops. The subprocess modes re-execute this test
// binary (see TestMain): a -cpuprofile covers the host side only, while
// mode=shim has both sides in this process. The writes are bound by the
// disk's fsync; on a shared disk compare modes by KiB/sync and with
// -count and benchstat -col /mode, not from one run.
func BenchmarkPlugin(b *testing.B) {
	dir := benchDir(b)
	cfg := *DefaultConfig()
	s, err := Open(context.Background(), dir, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	steadyState(b, s)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var next storage.GroupID = 1 << 20 // below warmUp's group
	groups := func(n int) []storage.GroupID {
		ids := make([]storage.GroupID, n)
		for i := range ids {
			ids[i] = next
			next++
		}
		return ids
	}
	direct := map[string]float64{} // op -> ops/s of mode=direct
	for _, m := range pluginModes {
		b.Run("mode="+m.name, func(b *testing.B) {
			s := m.open(b, dir, cfg)
			defer func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			}()
			for _, op := range pluginOps {
				b.Run("op="+op.name, func(b *testing.B) {
					op.run(b, s, groups)
					if b.Failed() || b.Elapsed() <= 0 {
						return
					}
					ops := float64(b.N) / b.Elapsed().Seconds()
					b.ReportMetric(ops, "ops/s")
					if m.direct {
						direct[op.name] = ops
					} else if d := direct[op.name]; d > 0 {
						b.ReportMetric(ops/d, "vs-direct")
					}
				})
			}
		})
	}
}

// steadyState is warmUp without its wait for RecycleSegments-1 recycle
// files, which a store that reclaims as it writes may never keep (each is
// taken for the next segment as soon as it is made): it writes several
// segments of data, truncated as it goes, then waits (at most 10 s) for a
// recycle file and the next segment to be ready.
func steadyState(b *testing.B, s *Store) {
	b.Helper()
	ctx := context.Background()
	const g = storage.GroupID(1 << 40)
	data := make([]byte, 1<<20)
	n := uint64(int64(s.cfg.RecycleSegments+2) * s.cfg.SegmentSize / int64(len(data)))
	for i := uint64(1); i <= n; i++ {
		w := storage.GroupWrite{Group: g, Entries: []storage.Entry{{Index: i, Term: 1, Data: data}}, TruncBefore: i}
		if err := s.Write(ctx, []storage.GroupWrite{w}, i == n); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Drop(ctx, g); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		s.recMu.Lock()
		r := len(s.recycled)
		s.recMu.Unlock()
		if r > 0 {
			break
		}
		s.kickReclaim()
		time.Sleep(10 * time.Millisecond)
	}
	res := <-s.next // the next segment prepared
	s.next <- res
}

// syncsOf is the store's fsync count (0 if it keeps none).
func syncsOf(s storage.Store) uint64 {
	if st, ok := s.(storage.Stats); ok {
		return st.Syncs()
	}
	return 0
}

// reportSyncs reports syncs/s and KiB/sync of a write benchmark that wrote
// bytes with syncs fsyncs.
func reportSyncs(b *testing.B, syncs uint64, bytes int64) {
	b.Helper()
	if syncs == 0 || b.Elapsed() <= 0 {
		return
	}
	b.ReportMetric(float64(syncs)/b.Elapsed().Seconds(), "syncs/s")
	b.ReportMetric(float64(bytes)/float64(syncs)/1024, "KiB/sync")
}

func benchData(size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	return data
}

// benchPluginWrite has one writer per group write one 1 KiB entry per
// Write with sync=true, b.N Writes in all. Each group is truncated as it
// goes, as Raft logs are, so the store stays in its steady state.
func benchPluginWrite(b *testing.B, s storage.Store, groups []storage.GroupID) {
	data := benchData(1 << 10)
	b.SetBytes(int64(len(data)))
	syncs0 := syncsOf(s)
	b.ResetTimer()
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			ctx := context.Background()
			ws := []storage.GroupWrite{{Group: g}}
			for idx := uint64(1); n.Add(1) <= int64(b.N); idx++ {
				ws[0] = storage.GroupWrite{Group: g, Entries: []storage.Entry{{Index: idx, Term: 1, Data: data}}}
				if idx > 64 && idx%64 == 0 {
					ws[0].TruncBefore = idx - 32
				}
				if err := s.Write(ctx, ws, true); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	reportSyncs(b, syncsOf(s)-syncs0, int64(b.N)*int64(len(data)))
}

// benchPluginBatch writes one 1 KiB entry to each group in one Write with
// sync=true, b.N Writes.
func benchPluginBatch(b *testing.B, s storage.Store, groups []storage.GroupID) {
	data := benchData(1 << 10)
	b.SetBytes(int64(len(groups) * len(data)))
	ws := make([]storage.GroupWrite, len(groups))
	entries := make([]storage.Entry, len(groups))
	ctx := context.Background()
	syncs0 := syncsOf(s)
	b.ResetTimer()
	for i := range b.N {
		idx := uint64(i + 1)
		for k, g := range groups {
			entries[k] = storage.Entry{Index: idx, Term: 1, Data: data}
			ws[k] = storage.GroupWrite{Group: g, Entries: entries[k : k+1]}
			if idx > 64 && idx%64 == 0 {
				ws[k].TruncBefore = idx - 32
			}
		}
		if err := s.Write(ctx, ws, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportSyncs(b, syncsOf(s)-syncs0, int64(b.N)*int64(len(groups)*len(data)))
}

// benchPluginEntries writes count entries of 1 KiB to g, then has readers
// read all of them with one Entries call each, b.N calls in all.
func benchPluginEntries(b *testing.B, s storage.Store, g storage.GroupID, readers, count int) {
	data := benchData(1 << 10)
	es := make([]storage.Entry, count)
	for i := range es {
		es[i] = storage.Entry{Index: uint64(i + 1), Term: 1, Data: data}
	}
	if err := s.Write(context.Background(), []storage.GroupWrite{{Group: g, Entries: es}}, true); err != nil {
		b.Fatal(err)
	}
	l, err := s.Log(g)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(count) * int64(len(data)))
	b.ResetTimer()
	var n atomic.Int64
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for n.Add(1) <= int64(b.N) {
				got, err := l.Entries(1, uint64(count)+1, 0)
				if err != nil {
					b.Error(err)
					return
				}
				if len(got) != count {
					b.Errorf("Entries: %d entries, want %d", len(got), count)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkPluginStart measures opening a store on an empty directory:
// for the subprocess modes, from OpenStorage to a store ready for use
// (process start, go-plugin handshake, gRPC connection, the store's Open,
// its groups loaded, streams set up), with and without AutoMTLS. The
// segments are of 1 MiB so that zero-filling the first one (which every
// mode pays, and which takes 64 times longer with the default 64 MiB)
// does not hide the plugin's own cost; mode=direct is the store alone.
// Closing is not measured. Metric: ms/start, and extra-ms over
// mode=direct's in the same run.
func BenchmarkPluginStart(b *testing.B) {
	cfg := *DefaultConfig()
	cfg.SegmentSize = 1 << 20
	base := benchDir(b)
	var directMs float64
	for _, m := range pluginModes {
		if m.unary || m.tailCache {
			continue // starts as stream does
		}
		b.Run("mode="+m.name, func(b *testing.B) {
			b.StopTimer()
			for i := range b.N {
				dir, err := os.MkdirTemp(base, fmt.Sprintf("start-%d-", i))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				s := m.open(b, dir, cfg)
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
			}
			ms := float64(b.Elapsed()) / float64(b.N) / float64(time.Millisecond)
			b.ReportMetric(ms, "ms/start")
			if m.direct {
				directMs = ms
			} else if directMs > 0 {
				b.ReportMetric(ms-directMs, "extra-ms")
			}
		})
	}
}
