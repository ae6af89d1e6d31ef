package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, testConfig(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openMem(t *testing.T, fs vfs.FS) *Store {
	t.Helper()
	s, err := open(context.Background(), fs, memDir, testConfig(), nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func entries(lo, hi, term uint64) []storage.Entry {
	var es []storage.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, storage.Entry{Index: i, Term: term, Data: fmt.Appendf(nil, "entry %d/%d", i, term)})
	}
	return es
}

func mustWrite(t *testing.T, s storage.Store, sync bool, ws ...storage.GroupWrite) {
	t.Helper()
	if err := s.Write(context.Background(), ws, sync); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func wantCode(t *testing.T, err error, c storage.Code, what string) {
	t.Helper()
	if got := storage.CodeOf(err); got != c {
		t.Errorf("%s: %v (code %v), want code %v", what, err, got, c)
	}
}

// lockHelperEnv names the directory TestLockHelper tries to open, in a
// process of its own.
const lockHelperEnv = "PEBBLESTORE_LOCK_DIR"

func TestExclusiveLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: entries(1, 3, 1)})

	// In this process, by the same path and by another one.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, link, dir + "/."} {
		s2, err := Open(ctx, path, testConfig(), nil)
		if err == nil {
			_ = s2.Close()
			t.Fatalf("a second Open of %s succeeded while the store is open", path)
		}
		if !strings.Contains(err.Error(), "another store") {
			t.Errorf("second Open of %s: %v; want an error that says the directory is in use", path, err)
		}
	}

	// From another process: Pebble's fcntl lock.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "locked as expected") {
		t.Fatalf("Open in another process: %v\n%s", err, out)
	}

	// Released by Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, link)
	if last, err := mustLog(t, s2, 1).LastIndex(); last != 3 || err != nil {
		t.Errorf("after reopening: LastIndex = %d, %v; want 3", last, err)
	}
}

// TestLockHelper is the other process of TestExclusiveLock.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("run by TestExclusiveLock")
	}
	s, err := Open(context.Background(), dir, testConfig(), nil)
	if err == nil {
		_ = s.Close()
		t.Fatalf("opened %s while another process has it open", dir)
	}
	t.Logf("locked as expected: %v", err)
}

func mustLog(t *testing.T, s storage.Store, g storage.GroupID) storage.Log {
	t.Helper()
	l, err := s.Log(g)
	if err != nil {
		t.Fatalf("Log(%d): %v", g, err)
	}
	return l
}

// TestFailedSync fails the fsync of the write-ahead log: the Write that
// waited for it fails with CodeFailed and so does every later call.
func TestFailedSync(t *testing.T) {
	var armed atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.HasSuffix(op.Path, ".log") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	s, err := open(context.Background(), fs, memDir, testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: entries(1, 3, 1)})
	l := mustLog(t, s, 1)
	armed.Store(true)
	err = s.Write(ctx, []storage.GroupWrite{{Group: 1, Entries: entries(4, 5, 1)}}, true)
	wantCode(t, err, storage.CodeFailed, "Write with a failed fsync")
	if !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("Write: %v; want the fsync error as its cause", err)
	}
	wantCode(t, s.Write(ctx, []storage.GroupWrite{{Group: 2, State: []byte("x")}}, false), storage.CodeFailed, "Write after the failure")
	wantCode(t, s.Drop(ctx, 1), storage.CodeFailed, "Drop after the failure")
	_, err = s.Log(1)
	wantCode(t, err, storage.CodeFailed, "Log after the failure")
	_, err = s.Groups(ctx)
	wantCode(t, err, storage.CodeFailed, "Groups after the failure")
	_, err = l.LastIndex()
	wantCode(t, err, storage.CodeFailed, "LastIndex after the failure")
	_, err = l.Entries(1, 2, 0)
	wantCode(t, err, storage.CodeFailed, "Entries after the failure")
	wantCode(t, s.Close(), storage.CodeFailed, "Close after the failure")
	wantCode(t, s.Close(), storage.CodeClosed, "second Close")
}

// TestSyncs checks Syncs: one fsync for a synced Write, none for an
// unsynced one, and fewer fsyncs than synced Writes when they run
// concurrently (Pebble's commit pipeline shares them).
func TestSyncs(t *testing.T) {
	// Slow fsyncs, so that concurrent writers find one in progress.
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSyncData && strings.HasSuffix(op.Path, ".log") {
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}))
	s := openMem(t, fs)
	before := s.Syncs()
	mustWrite(t, s, false, storage.GroupWrite{Group: 1, Entries: entries(1, 1, 1)})
	if n := s.Syncs() - before; n != 0 {
		t.Errorf("an unsynced Write did %d fsyncs, want 0", n)
	}
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: entries(2, 2, 1)})
	if n := s.Syncs() - before; n != 1 {
		t.Errorf("a synced Write did %d fsyncs, want 1", n)
	}
	const writers, writes = 8, 10
	before = s.Syncs()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			g := storage.GroupID(10 + w)
			for i := range uint64(writes) {
				if err := s.Write(context.Background(), []storage.GroupWrite{{Group: g, Entries: entries(i+1, i+1, 1)}}, true); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := s.Syncs() - before
	t.Logf("%d synced Writes from %d writers: %d fsyncs", writers*writes, writers, n)
	if n == 0 || n >= writers*writes {
		t.Errorf("%d synced concurrent Writes did %d fsyncs; want fewer (group commit)", writers*writes, n)
	}
}

// TestKeysMatchIndex makes random writes and checks after each that the
// keys in Pebble are exactly what the index says (entries [first, last],
// one run key per run, meta and state keys) and that recovery would read
// the same index back.
func TestKeysMatchIndex(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	groups := []storage.GroupID{1, 2, 1<<64 - 1}
	for step := range 400 {
		g := groups[rng.IntN(len(groups))]
		x := s.groups[g].index()
		w := storage.GroupWrite{Group: g}
		term := x.term(x.last)
		if rng.IntN(20) == 0 {
			if err := s.Drop(ctx, g); err != nil {
				t.Fatal(err)
			}
			checkKeys(t, s, step)
			continue
		}
		if rng.IntN(15) == 0 {
			term++
			w.Reset = &storage.Position{Index: uint64(rng.IntN(int(x.last) + 3)), Term: term}
		}
		first, last := x.first, x.last
		if w.Reset != nil {
			first, last = w.Reset.Index+1, w.Reset.Index
		}
		if rng.IntN(4) != 0 {
			lo := last + 1
			if rng.IntN(3) == 0 {
				lo = first + uint64(rng.IntN(int(last+2-first)))
			}
			for i := range uint64(1 + rng.IntN(6)) {
				if rng.IntN(3) == 0 {
					term++
				}
				w.Entries = append(w.Entries, storage.Entry{Index: lo + i, Term: term, Data: []byte{byte(step)}})
			}
			last = w.Entries[len(w.Entries)-1].Index
		}
		if rng.IntN(4) == 0 {
			w.State = []byte{byte(step)}
		}
		if rng.IntN(4) == 0 {
			w.TruncBefore = first + uint64(rng.IntN(int(last+2-first)))
		}
		mustWrite(t, s, rng.IntN(2) == 0, w)
		checkKeys(t, s, step)
	}
}

// checkKeys compares every group's keys in Pebble with its index.
func checkKeys(t *testing.T, s *Store, step int) {
	t.Helper()
	live := make(map[storage.GroupID]*index)
	for id, g := range s.groups {
		if x := g.idx.Load(); x != nil {
			live[id] = x
		}
	}
	scanned, err := scanIndexes(s.db)
	if err != nil {
		t.Fatalf("step %d: scan: %v", step, err)
	}
	if len(scanned) != len(live) {
		t.Fatalf("step %d: Pebble holds %d groups, the store %d", step, len(scanned), len(live))
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGroup}, UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var entries = make(map[storage.GroupID][]uint64)
	for ok := it.First(); ok; ok = it.Next() {
		k, err := parseKey(it.Key())
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if k.kind == kindEntry {
			entries[k.group] = append(entries[k.group], k.index)
		}
	}
	for id, x := range live {
		y := scanned[id]
		if y == nil || x.first != y.first || x.last != y.last || x.prevTerm != y.prevTerm || !bytes.Equal(x.state, y.state) || (x.state == nil) != (y.state == nil) || !reflect.DeepEqual(slicesOrNil(x.runs), slicesOrNil(y.runs)) {
			t.Fatalf("step %d: group %d: index %+v, recovery would read %+v", step, id, x, y)
		}
		es := entries[id]
		if uint64(len(es)) != x.last+1-x.first || (len(es) > 0 && (es[0] != x.first || es[len(es)-1] != x.last)) {
			t.Fatalf("step %d: group %d: entry keys %v, want [%d, %d]", step, id, es, x.first, x.last)
		}
	}
}

func slicesOrNil(rs []run) []run {
	if len(rs) == 0 {
		return nil
	}
	return rs
}

func TestNotAStore(t *testing.T) {
	fs := vfs.NewMem()
	db, err := pebble.Open(memDir, &pebble.Options{FS: fs, Logger: slogLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("someone else's key"), nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := open(context.Background(), fs, memDir, testConfig(), nil)
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a Pebble database that is not a Chronik store")
	}
	wantCode(t, err, storage.CodeCorrupt, "Open of a foreign database")
}

func TestTooLarge(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	big := make([]byte, MaxWriteSize/4)
	ws := []storage.GroupWrite{{Group: 1, Entries: []storage.Entry{{Index: 1, Data: big}, {Index: 2, Data: big}, {Index: 3, Data: big}, {Index: 4, Data: big}}}}
	wantCode(t, s.Write(context.Background(), ws, false), storage.CodeTooLarge, "Write of 1 GiB")
	if ids, err := s.Groups(context.Background()); len(ids) != 0 || err != nil {
		t.Errorf("after a refused Write: Groups = %v, %v; want none", ids, err)
	}
}

// TestQuiet checks that nothing reaches stdout or the standard logger, and
// that Pebble's messages reach the slog.Logger given to Open.
func TestQuiet(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stdlog := os.Stdout, log.Writer()
	os.Stdout = w
	var std bytes.Buffer
	log.SetOutput(&std)
	t.Cleanup(func() {
		os.Stdout = stdout
		log.SetOutput(stdlog)
	})
	printed := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		_ = r.Close()
		printed <- b
	}()
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	for range 2 {
		s, err := Open(context.Background(), dir, testConfig(), logger)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: entries(1, 100, 1)})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	os.Stdout = stdout
	_ = w.Close()
	out := <-printed
	if len(out) > 0 || std.Len() > 0 {
		t.Errorf("printed to stdout %q, to the standard logger %q", out, std.String())
	}
	if !strings.Contains(logged.String(), "pebble: ") {
		t.Errorf("nothing of Pebble's in the slog output:\n%s", logged.String())
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" if valid
	}{
		{"default", func(*Config) {}, ""},
		{"small cache", func(c *Config) { c.CacheSize = 1 << 10 }, "pebble: cache_size"},
		{"small memtable", func(c *Config) { c.MemTableSize = 1 << 10 }, "pebble: memtable_size"},
		{"huge memtable", func(c *Config) { c.MemTableSize = 4 << 30 }, "pebble: memtable_size"},
		{"no sync", func(c *Config) { c.Sync = false }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("Validate = %v; want an error starting with %q", err, tc.want)
			}
		})
	}
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type() != Type {
		t.Errorf("Type = %q", f.Type())
	}
	ctx := context.Background()
	if _, err := f.Create(ctx, component.Settings{}, f.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "no data directory") {
		t.Errorf("Create without a data directory: %v", err)
	}
	bad := DefaultConfig()
	bad.CacheSize = 0
	if _, err := f.Create(ctx, component.Settings{DataDir: t.TempDir()}, bad); err == nil {
		t.Error("Create with an invalid config succeeded")
	}
	s, err := f.Create(ctx, component.Settings{DataDir: t.TempDir()}, f.DefaultConfig())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, State: []byte("x")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
