package memory

import (
	"bytes"
	"context"
	"sync"

	"github.com/chronik-go/chronik/core/storage"
)

// Store is a storage.Store in memory. It is safe for concurrent use; sync
// is accepted and ignored, since nothing here outlives the process.
type Store struct {
	maxEntrySize int

	mu     sync.RWMutex
	groups map[storage.GroupID]*group
	closed bool
	syncs  uint64
}

var (
	_ storage.Store = (*Store)(nil)
	_ storage.Stats = (*Store)(nil)
)

// group is one group's log: entries [first, first+len(entries)), the term of
// entry first-1 and the state blob. Everything in it is owned by the store.
type group struct {
	first    uint64
	prevTerm uint64 // term of entry first-1
	entries  []storage.Entry
	state    []byte
}

func newGroup() *group { return &group{first: 1} }

func (g *group) last() uint64 { return g.first + uint64(len(g.entries)) - 1 }

// New returns an empty store.
func New(cfg Config) *Store {
	return &Store{maxEntrySize: cfg.MaxEntrySize, groups: make(map[storage.GroupID]*group)}
}

// Write applies ws as one unit: it checks all of them before changing
// anything, so a bad GroupWrite leaves the whole batch unapplied. GroupWrites
// for the same group take effect in order.
func (s *Store) Write(ctx context.Context, ws []storage.GroupWrite, sync bool) error {
	if err := ctx.Err(); err != nil {
		return storage.Errorf(storage.CodeInternal, "memory: write: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.Errorf(storage.CodeClosed, "memory: write: store closed")
	}
	if err := s.check(ws); err != nil {
		return err
	}
	for i := range ws {
		s.apply(&ws[i])
	}
	if sync {
		s.syncs++
	}
	return nil
}

// check validates ws against the current logs (storage.CheckWrites) and
// the entry size limit.
func (s *Store) check(ws []storage.GroupWrite) error {
	if err := storage.CheckWrites(ws, func(id storage.GroupID) (uint64, uint64) {
		if g := s.groups[id]; g != nil {
			return g.first, g.last()
		}
		return 1, 0
	}); err != nil {
		return err
	}
	if s.maxEntrySize > 0 {
		for _, w := range ws {
			for _, e := range w.Entries {
				if len(e.Data) > s.maxEntrySize {
					return storage.Errorf(storage.CodeTooLarge, "memory: group %d: entry %d is %d bytes, limit %d",
						w.Group, e.Index, len(e.Data), s.maxEntrySize)
				}
			}
		}
	}
	return nil
}

// apply performs a checked GroupWrite in the order the contract gives.
func (s *Store) apply(w *storage.GroupWrite) {
	if w.Reset == nil && len(w.Entries) == 0 && w.State == nil && w.TruncBefore == 0 {
		return // nothing to do; do not create the group
	}
	g := s.groups[w.Group]
	if g == nil {
		g = newGroup()
		s.groups[w.Group] = g
	}
	if r := w.Reset; r != nil {
		g.first, g.prevTerm, g.entries = r.Index+1, r.Term, nil
	}
	if len(w.Entries) > 0 {
		// Overwriting in place is safe: readers copy out under the read lock.
		g.entries = g.entries[:w.Entries[0].Index-g.first]
		for _, e := range w.Entries {
			e.Data = bytes.Clone(e.Data)
			g.entries = append(g.entries, e)
		}
	}
	if w.State != nil {
		g.state = bytes.Clone(w.State) // keeps an empty state non-nil
	}
	if w.TruncBefore > g.first {
		n := w.TruncBefore - g.first
		g.prevTerm = termAt(g, w.TruncBefore-1)
		// Copy the tail so that the dropped prefix can be collected.
		g.entries = append([]storage.Entry(nil), g.entries[n:]...)
		g.first = w.TruncBefore
	}
}

// termAt is the term of entry i, for first-1 <= i <= last.
func termAt(g *group, i uint64) uint64 {
	if i == g.first-1 {
		return g.prevTerm
	}
	return g.entries[i-g.first].Term
}

// Log returns the read side of group gid. It reads whatever the store holds
// for gid at each call, so after Drop it reads as empty.
func (s *Store) Log(gid storage.GroupID) (storage.Log, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.Errorf(storage.CodeClosed, "memory: log: store closed")
	}
	return &log{s: s, gid: gid}, nil
}

// Groups lists the groups the store holds, in no particular order.
func (s *Store) Groups(ctx context.Context) ([]storage.GroupID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.Errorf(storage.CodeClosed, "memory: groups: store closed")
	}
	ids := make([]storage.GroupID, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	return ids, nil
}

// Drop deletes group gid. Dropping a group the store does not hold is not an
// error.
func (s *Store) Drop(ctx context.Context, gid storage.GroupID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.Errorf(storage.CodeClosed, "memory: drop: store closed")
	}
	delete(s.groups, gid)
	return nil
}

// Close releases everything the store holds. Calls after Close, including a
// second Close, fail with storage.CodeClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.Errorf(storage.CodeClosed, "memory: close: store closed")
	}
	s.closed = true
	s.groups = nil
	return nil
}

// Syncs counts the Writes made with sync=true; each would have been one
// fsync in a store on disk.
func (s *Store) Syncs() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.syncs
}
