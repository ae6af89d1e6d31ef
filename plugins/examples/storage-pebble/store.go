package pebblestore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/chronik-go/chronik/core/storage"
)

// Store is a storage.Store on a Pebble database. It is safe for concurrent
// use. See the package doc for the layout and the guarantees.
type Store struct {
	db   *pebble.DB
	lock *pebble.Lock // the directory lock, released after db is closed
	dir  string
	cfg  Config
	log  *slog.Logger

	syncs atomic.Uint64 // completed fsyncs of the write-ahead log

	// mu guards groups and closed. It is held briefly: to look a group up,
	// to add or remove one, to enter a call. Lock order: group.wmu (by
	// ascending group), then group.rmu (likewise), then mu.
	mu       sync.RWMutex
	groups   map[storage.GroupID]*group
	closed   bool
	inflight sync.WaitGroup // calls using db (Write, Drop, Entries); Close waits for them
	failed   atomic.Pointer[error]
}

var (
	_ storage.Store = (*Store)(nil)
	_ storage.Stats = (*Store)(nil)
)

// MaxWriteSize bounds one Write: its entry data and states plus a small
// allowance per entry. A larger Write fails with storage.CodeTooLarge.
// (Pebble refuses batches of 4 GiB; a Raft log wants far less.)
const MaxWriteSize = 1 << 30

// formatMajorVersion is Pebble's on-disk format for stores this package
// creates. It is pinned rather than pebble.FormatNewest so that upgrading
// Pebble never ratchets the format of existing stores silently; it
// includes WAL sync chunks (FormatWALSyncChunks), which let recovery tell a
// torn tail from corruption.
const formatMajorVersion = pebble.FormatValueSeparation

// Open opens (or creates) the store in directory dir, on the local file
// system. It takes Pebble's lock on the directory (DIR/LOCK, an fcntl lock
// plus an in-process check), so a second Open of the same directory, in
// this process or another, fails until the store is closed. log receives
// Pebble's own messages; nil discards them.
func Open(ctx context.Context, dir string, cfg Config, log *slog.Logger) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("pebble: open: no directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebble: open: %w", err)
	}
	// One spelling per directory, so that the in-process half of Pebble's
	// lock (a set of locked paths) sees every Open of it.
	real, err := filepath.Abs(dir)
	if err == nil {
		real, err = filepath.EvalSymlinks(real)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	return open(ctx, vfs.Default, real, cfg, log)
}

// open opens the store in directory dir of fs (tests use an in-memory fs).
func open(ctx context.Context, fs vfs.FS, dir string, cfg Config, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	lock, err := pebble.LockDirectory(dir, fs)
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: cannot lock %s: is another store using the directory? %w", dir, fs.PathJoin(dir, "LOCK"), err)
	}
	s := &Store{lock: lock, dir: dir, cfg: cfg, log: log, groups: make(map[storage.GroupID]*group)}
	opts := &pebble.Options{
		FS:                 countingFS{FS: fs, syncs: &s.syncs},
		Lock:               lock,
		Logger:             slogLogger{log: log},
		EventListener:      eventListener(log),
		CacheSize:          cfg.CacheSize,
		MemTableSize:       uint64(cfg.MemTableSize),
		FormatMajorVersion: formatMajorVersion,
	}
	s.db, err = pebble.Open(dir, opts)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	if err := s.recover(); err != nil {
		_ = s.db.Close()
		_ = lock.Close()
		return nil, err
	}
	log.Debug("pebble: store opened", "dir", dir, "groups", len(s.groups))
	return s, nil
}

// errState returns the error every call gets on a failed or closed store.
// The caller holds mu.
func (s *Store) errState(what string) error {
	if p := s.failed.Load(); p != nil {
		return storage.Errorf(storage.CodeFailed, "pebble: %s: store failed: %w", what, *p)
	}
	if s.closed {
		return storage.Errorf(storage.CodeClosed, "pebble: %s: store closed", what)
	}
	return nil
}

// enter starts a call that uses db; the caller calls inflight.Done when it
// is done with db.
func (s *Store) enter(what string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.errState(what); err != nil {
		return err
	}
	s.inflight.Add(1)
	return nil
}

// fail closes the store for good after a commit failed: whether the batch
// is durable is unknown (a failed fsync), so nothing is retried. Pebble
// stays open until Close.
func (s *Store) fail(what string, err error) error {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("pebble: commit failed; the store is closed for good", "dir", s.dir, "err", err)
	}
	return storage.Errorf(storage.CodeFailed, "pebble: %s: commit failed; store closed for good: %w", what, err)
}

// Log returns the read side of group g; see storage.Store.
func (s *Store) Log(g storage.GroupID) (storage.Log, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.errState("log"); err != nil {
		return nil, err
	}
	return &glog{s: s, id: g}, nil
}

// Groups lists the groups that hold a key in Pebble (entries, state or a
// meta key left by Reset or TruncBefore), in ascending order.
func (s *Store) Groups(ctx context.Context) ([]storage.GroupID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.errState("groups"); err != nil {
		return nil, err
	}
	ids := make([]storage.GroupID, 0, len(s.groups))
	for id, g := range s.groups {
		if g.idx.Load() != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Syncs is the number of fsyncs of Pebble's write-ahead log so far.
// Concurrent synced Writes share one (Pebble's commit pipeline groups
// them), so it grows more slowly than the number of synced Writes.
func (s *Store) Syncs() uint64 { return s.syncs.Load() }

// Close waits for the calls in flight, closes Pebble (which keeps what was
// written, synced or not: its WAL is flushed and synced on close) and
// releases the directory lock. A second Close returns storage.CodeClosed;
// Close of a failed store releases it and returns storage.CodeFailed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storage.Errorf(storage.CodeClosed, "pebble: close: store closed")
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = nil
	if ferr := s.errState("close"); storage.CodeOf(ferr) == storage.CodeFailed {
		if err != nil {
			s.log.Debug("pebble: close of a failed store", "dir", s.dir, "err", err)
		}
		return ferr
	}
	if err != nil {
		return storage.Errorf(storage.CodeInternal, "pebble: close %s: %w", s.dir, err)
	}
	return nil
}
