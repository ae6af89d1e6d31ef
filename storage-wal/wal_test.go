package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
)

func openT(t *testing.T, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, cfg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ent(i, term uint64, data string) storage.Entry {
	return storage.Entry{Index: i, Term: term, Data: []byte(data)}
}

func mustWrite(t *testing.T, s *Store, sync bool, ws ...storage.GroupWrite) {
	t.Helper()
	if err := s.Write(context.Background(), ws, sync); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func wantCode(t *testing.T, err error, c storage.Code) {
	t.Helper()
	if storage.CodeOf(err) != c {
		t.Fatalf("err = %v; want code %v", err, c)
	}
}

func readAll(t *testing.T, s *Store, g storage.GroupID) []storage.Entry {
	t.Helper()
	l, err := s.Log(g)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := l.FirstIndex()
	last, _ := l.LastIndex()
	if last < first {
		return nil
	}
	es, err := l.Entries(first, last+1, 0)
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", first, last+1, err)
	}
	return es
}

// poll waits for cond, failing after a generous deadline (a hang guard,
// not a timing assertion).
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFsyncFailureIsFatal(t *testing.T) {
	s := openT(t, t.TempDir(), testConfig(64<<10))
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "a")}})
	l, _ := s.Log(1)
	calls := 0
	s.fsync = func(*os.File) error { calls++; return syscall.EIO }
	err := s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: []storage.Entry{ent(2, 1, "b")}}}, true)
	wantCode(t, err, storage.CodeFailed)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("err = %v; want it to wrap EIO", err)
	}
	// Never retried: every later call fails without another fsync.
	wantCode(t, s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: []storage.Entry{ent(2, 1, "b")}}}, true), storage.CodeFailed)
	wantCode(t, s.Write(context.Background(), nil, false), storage.CodeFailed)
	wantCode(t, s.Drop(context.Background(), 1), storage.CodeFailed)
	_, err = s.Log(1)
	wantCode(t, err, storage.CodeFailed)
	_, err = s.Groups(context.Background())
	wantCode(t, err, storage.CodeFailed)
	_, err = l.Entries(1, 2, 0)
	wantCode(t, err, storage.CodeFailed)
	_, err = l.LastIndex()
	wantCode(t, err, storage.CodeFailed)
	wantCode(t, s.Close(), storage.CodeFailed)
	if calls != 1 {
		t.Errorf("fsync called %d times; want 1", calls)
	}
}

func TestGroupCommit(t *testing.T) {
	s := openT(t, t.TempDir(), testConfig(1<<20))
	ctx := context.Background()

	// One Write for many groups: one fsync.
	var ws []storage.GroupWrite
	for g := range 100 {
		ws = append(ws, storage.GroupWrite{Group: storage.GroupID(g + 1), Entries: []storage.Entry{ent(1, 1, "x")}, State: []byte("hs")})
	}
	before := s.Syncs()
	mustWrite(t, s, true, ws...)
	if got := s.Syncs() - before; got != 1 {
		t.Errorf("a Write of 100 groups made %d fsyncs; want 1", got)
	}

	// Concurrent Writes: while one fsync runs, the others queue, and the
	// next fsync covers all of them.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.fsync = func(f *os.File) error {
		once.Do(func() { close(entered); <-release })
		return fdatasync(f)
	}
	before = s.Syncs()
	errs := make(chan error, 65)
	go func() {
		errs <- s.Write(ctx, []storage.GroupWrite{{Group: 1000, Entries: []storage.Entry{ent(1, 1, "first")}}}, true)
	}()
	<-entered
	const writers = 64
	for w := range writers {
		go func() {
			errs <- s.Write(ctx, []storage.GroupWrite{{Group: storage.GroupID(2000 + w), Entries: []storage.Entry{ent(1, 1, "w")}}}, true)
		}()
	}
	poll(t, "writers to write", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		for w := range writers {
			if s.groups[storage.GroupID(2000+w)] == nil {
				return false
			}
		}
		return true
	})
	close(release)
	for range writers + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Syncs() - before; got != 2 {
		t.Errorf("65 concurrent synced Writes made %d fsyncs; want 2 (the one in flight, then one for the 64 queued)", got)
	}
}

// recordOffsets returns the offsets of the records of a segment file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := parseName(filepath.Base(path), segSuffix)
	return dataRecordOffsets(data, seq)
}

// dataRecordOffsets returns the offsets of the records of segment seq.
func dataRecordOffsets(data []byte, seq uint64) []int64 {
	var offs []int64
	for off := int64(0); off+headerSize <= int64(len(data)); {
		h, ok := validAt(data, off)
		if !ok || h.seq != seq {
			break
		}
		offs = append(offs, off)
		off = align(off + headerSize + int64(h.bodyLen))
	}
	return offs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(64 << 10)
	s := openT(t, dir, cfg)
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "synced")}})
	mustWrite(t, s, false, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(2, 1, "not synced")}})
	path := s.active().path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	offs := recordOffsets(t, path) // synced, not synced, seal
	if len(offs) != 3 {
		t.Fatalf("%d records; want 3", len(offs))
	}
	flipByte(t, path, offs[1]+headerSize+2) // a torn body
	s2 := openT(t, dir, cfg)
	r := s2.Recovery()
	if !r.Truncated || r.Offset != offs[1] || r.Segment != path || r.Bytes == 0 {
		t.Errorf("Recovery = %+v; want the tail cut at %d in %s", r, offs[1], path)
	}
	es := readAll(t, s2, 1)
	if len(es) != 1 || string(es[0].Data) != "synced" {
		t.Fatalf("after recovery: %v; want the synced entry only", es)
	}
	// The store goes on, and the cut stays cut.
	mustWrite(t, s2, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(2, 2, "after")}})
	s2.Close()
	s3 := openT(t, dir, cfg)
	if r := s3.Recovery(); r.Truncated {
		t.Errorf("second recovery cut again: %+v", r)
	}
	if es := readAll(t, s3, 1); len(es) != 2 || string(es[1].Data) != "after" || es[1].Term != 2 {
		t.Fatalf("after second recovery: %v", es)
	}
}

func TestMidLogCorruption(t *testing.T) {
	cfg := testConfig(8 << 10)
	t.Run("sealed segment", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, cfg)
		for i := range uint64(40) { // several segments
			mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(i+1, 1, string(bytes.Repeat([]byte("x"), 500)))}})
		}
		s.Close()
		files := segFiles(t, dir)
		if len(files) < 3 {
			t.Fatalf("%d segments; want several", len(files))
		}
		flipByte(t, files[0], headerSize+10)
		_, err := Open(context.Background(), dir, cfg, nil)
		wantCode(t, err, storage.CodeCorrupt)
	})
	t.Run("synced record in the last segment", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, cfg)
		mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "a")}})
		mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(2, 1, "b")}})
		mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(3, 1, "c")}})
		path := s.active().path
		s.Close()
		offs := recordOffsets(t, path)
		flipByte(t, path, offs[1]+headerSize) // "b" was synced before "c" was written
		_, err := Open(context.Background(), dir, cfg, nil)
		wantCode(t, err, storage.CodeCorrupt)
	})
	t.Run("entry data on read", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, cfg)
		mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "abcdef")}})
		l, _ := s.Log(1)
		loc := s.groups[1].ents[0]
		flipByte(t, loc.seg.path, int64(loc.off))
		_, err := l.Entries(1, 2, 0)
		wantCode(t, err, storage.CodeCorrupt)
	})
}

func TestReclaim(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(8 << 10)
	cfg.RecycleSegments = 2
	s := openT(t, dir, cfg)
	// An idle group whose records would otherwise pin the first segment.
	mustWrite(t, s, true, storage.GroupWrite{Group: 7, State: []byte("idle state")},
		storage.GroupWrite{Group: 8, Reset: &storage.Position{Index: 100, Term: 3}})
	mustWrite(t, s, true, storage.GroupWrite{Group: 9, Entries: []storage.Entry{ent(1, 1, "x"), ent(2, 1, "y")}, TruncBefore: 2})
	mustWrite(t, s, true, storage.GroupWrite{Group: 9, TruncBefore: 3})
	data := string(bytes.Repeat([]byte("d"), 700))
	for i := uint64(1); i <= 200; i++ {
		w := storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(i, 1, data)}}
		if i > 5 {
			w.TruncBefore = i - 4
		}
		mustWrite(t, s, true, w)
	}
	poll(t, "segments to be reclaimed", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.segs) <= 3
	})
	if n := len(segFiles(t, dir)); n > 6 {
		t.Errorf("%d segment files remain", n)
	}
	s.Close()
	s2 := openT(t, dir, cfg)
	l7, _ := s2.Log(7)
	if st, _ := l7.State(); string(st) != "idle state" {
		t.Errorf("group 7 state = %q after reclaim", st)
	}
	l8, _ := s2.Log(8)
	if f, _ := l8.FirstIndex(); f != 101 {
		t.Errorf("group 8 first = %d; want 101", f)
	}
	if tm, err := l8.Term(100); tm != 3 || err != nil {
		t.Errorf("group 8 Term(100) = %d, %v; want 3", tm, err)
	}
	l9, _ := s2.Log(9)
	if f, _ := l9.FirstIndex(); f != 3 {
		t.Errorf("group 9 first = %d; want 3", f)
	}
	if tm, err := l9.Term(2); tm != 1 || err != nil {
		t.Errorf("group 9 Term(2) = %d, %v; want 1", tm, err)
	}
	es := readAll(t, s2, 1)
	if len(es) != 5 || es[0].Index != 196 || string(es[4].Data) != data {
		t.Errorf("group 1 after reclaim: %d entries from %d", len(es), es[0].Index)
	}
}

func TestRewrite(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(8 << 10)
	cfg.RewriteSegments = 3
	s := openT(t, dir, cfg)
	// An idle group: its entries would pin the first segment for good.
	mustWrite(t, s, true, storage.GroupWrite{Group: 7, Entries: []storage.Entry{ent(1, 1, "old"), ent(2, 2, "older")}, State: []byte("st")})
	mustWrite(t, s, true, storage.GroupWrite{Group: 7, TruncBefore: 2})
	data := string(bytes.Repeat([]byte("d"), 700))
	for i := uint64(1); i <= 300; i++ {
		w := storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(i, 1, data)}}
		if i > 5 {
			w.TruncBefore = i - 4
		}
		mustWrite(t, s, true, w)
	}
	poll(t, "the idle group's segment to be rewritten and reclaimed", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.segs) <= cfg.RewriteSegments+1
	})
	check := func(s *Store) {
		t.Helper()
		es := readAll(t, s, 7)
		if len(es) != 1 || es[0].Index != 2 || es[0].Term != 2 || string(es[0].Data) != "older" {
			t.Fatalf("group 7: %v", es)
		}
		l, _ := s.Log(7)
		if tm, err := l.Term(1); tm != 1 || err != nil {
			t.Fatalf("group 7 Term(1) = %d, %v", tm, err)
		}
		if st, _ := l.State(); string(st) != "st" {
			t.Fatalf("group 7 state %q", st)
		}
		if es := readAll(t, s, 1); len(es) != 5 || es[4].Index != 300 {
			t.Fatalf("group 1: %d entries", len(es))
		}
	}
	check(s)
	s.Close()
	s2, err := Open(context.Background(), dir, cfg, nil)
	if err != nil {
		dumpDir(t, dir)
		t.Fatalf("Open: %v", err)
	}
	defer s2.Close()
	check(s2)
}

func TestFsyncPolicies(t *testing.T) {
	t.Run("interval", func(t *testing.T) {
		cfg := testConfig(64 << 10)
		cfg.Fsync, cfg.FsyncInterval = FsyncInterval, time.Millisecond
		s := openT(t, t.TempDir(), cfg)
		mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "a")}})
		poll(t, "the interval fsync", func() bool { return s.Syncs() > 0 })
	})
	t.Run("never", func(t *testing.T) {
		cfg := testConfig(64 << 10)
		cfg.Fsync = FsyncNever
		s := openT(t, t.TempDir(), cfg)
		for i := uint64(1); i <= 10; i++ {
			mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(i, 1, "a")}})
		}
		if n := s.Syncs(); n != 0 {
			t.Errorf("%d fsyncs with fsync: never", n)
		}
	})
}

func TestOneStorePerDir(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, testConfig(64<<10))
	if _, err := Open(context.Background(), dir, testConfig(64<<10), nil); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestTooLarge(t *testing.T) {
	cfg := testConfig(64 << 10)
	s := openT(t, t.TempDir(), cfg)
	big := make([]byte, cfg.MaxEntrySize()+1024)
	err := s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: []storage.Entry{{Index: 1, Term: 1, Data: big}}}}, true)
	wantCode(t, err, storage.CodeTooLarge)
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{{Index: 1, Term: 1, Data: big[:cfg.MaxEntrySize()]}}})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"small segment", func(c *Config) { c.SegmentSize = 1024 }, false},
		{"unaligned segment", func(c *Config) { c.SegmentSize = 1<<20 + 1 }, false},
		{"bad policy", func(c *Config) { c.Fsync = "sometimes" }, false},
		{"interval without period", func(c *Config) { c.Fsync, c.FsyncInterval = FsyncInterval, 0 }, false},
		{"interval", func(c *Config) { c.Fsync = FsyncInterval }, true},
		{"never", func(c *Config) { c.Fsync = FsyncNever }, true},
	} {
		c := DefaultConfig()
		tc.mod(c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type() != "wal" {
		t.Fatalf("Type() = %q", f.Type())
	}
	cfg := f.DefaultConfig().(*Config)
	cfg.SegmentSize = 64 << 10
	s, err := f.Create(context.Background(), component.Settings{DataDir: t.TempDir()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Fsync = "bogus"
	if _, err := f.Create(context.Background(), component.Settings{DataDir: t.TempDir()}, cfg); err == nil {
		t.Fatal("Create with an invalid config succeeded")
	}
	_ = fmt.Sprint()
}
