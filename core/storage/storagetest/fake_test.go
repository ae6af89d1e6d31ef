package storagetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// The suite checks itself against a fake persistent store built on the
// model: a "disk" that records every GroupWrite and Drop, and how many of
// them a sync covered. A crash keeps a random prefix at least that long.

type fakeDisk struct {
	mu     sync.Mutex
	ops    []crashOp
	synced int
}

type fakeHarness struct{ disk *fakeDisk }

func newFakeHarness(context.Context, testing.TB) (Harness, error) {
	return &fakeHarness{disk: &fakeDisk{}}, nil
}

func (h *fakeHarness) Open(context.Context) (storage.Store, error) {
	h.disk.mu.Lock()
	defer h.disk.mu.Unlock()
	m := newModel()
	for _, op := range h.disk.ops {
		m.applyOp(op)
	}
	return &fakeStore{disk: h.disk, m: m}, nil
}

func (h *fakeHarness) Close() {}

func (h *fakeHarness) CrashCopy(_ context.Context, _ storage.Store, rng *rand.Rand) (Harness, error) {
	h.disk.mu.Lock()
	defer h.disk.mu.Unlock()
	k := h.disk.synced + rng.IntN(len(h.disk.ops)-h.disk.synced+1)
	ops := slices.Clone(h.disk.ops[:k])
	return &fakeHarness{disk: &fakeDisk{ops: ops, synced: k}}, nil
}

type fakeStore struct {
	disk   *fakeDisk
	mu     sync.RWMutex
	m      *model
	closed bool
}

func (s *fakeStore) record(op crashOp, sync bool) {
	s.disk.mu.Lock()
	defer s.disk.mu.Unlock()
	s.disk.ops = append(s.disk.ops, op)
	if sync {
		s.disk.synced = len(s.disk.ops)
	}
}

func (s *fakeStore) Write(_ context.Context, ws []storage.GroupWrite, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}
	if err := s.m.write(ws); err != nil {
		return err
	}
	for i := range ws {
		w := ws[i]
		w.Entries = cloneEntries(w.Entries)
		w.State = slices.Clone(w.State)
		s.record(crashOp{w: &w}, sync && i == len(ws)-1)
	}
	return nil
}

func (s *fakeStore) Log(g storage.GroupID) (storage.Log, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	return &fakeLog{s: s, id: g}, nil
}

func (s *fakeStore) Groups(context.Context) ([]storage.GroupID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	return s.m.ids(), nil
}

func (s *fakeStore) Drop(_ context.Context, g storage.GroupID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}
	s.m.drop(g)
	s.record(crashOp{drop: g}, true)
	return nil
}

func (s *fakeStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}
	s.closed = true
	s.disk.mu.Lock()
	s.disk.synced = len(s.disk.ops)
	s.disk.mu.Unlock()
	return nil
}

type fakeLog struct {
	s  *fakeStore
	id storage.GroupID
}

// read calls f with the group under the store's read lock.
func (l *fakeLog) read(f func(g *groupState) error) error {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	if l.s.closed {
		return storage.ErrClosed
	}
	return f(l.s.m.group(l.id))
}

func (l *fakeLog) FirstIndex() (i uint64, err error) {
	err = l.read(func(g *groupState) error { i = g.first; return nil })
	return i, err
}

func (l *fakeLog) LastIndex() (i uint64, err error) {
	err = l.read(func(g *groupState) error { i = g.last(); return nil })
	return i, err
}

func (l *fakeLog) Term(i uint64) (t uint64, err error) {
	err = l.read(func(g *groupState) error {
		switch {
		case i+1 < g.first:
			return storage.ErrCompacted
		case i > g.last():
			return storage.ErrUnavailable
		}
		t = g.term(i)
		return nil
	})
	return t, err
}

func (l *fakeLog) Entries(lo, hi, maxBytes uint64) (es []storage.Entry, err error) {
	err = l.read(func(g *groupState) error {
		switch {
		case lo > hi:
			return storage.ErrInvalid
		case lo < g.first:
			return storage.ErrCompacted
		case hi > g.last()+1:
			return storage.ErrUnavailable
		}
		var size uint64
		for _, e := range g.entries[lo-g.first : hi-g.first] {
			size += e.Size()
			if len(es) > 0 && maxBytes > 0 && size > maxBytes {
				break
			}
			es = append(es, e)
		}
		es = cloneEntries(es)
		return nil
	})
	return es, err
}

func (l *fakeLog) State() (st []byte, err error) {
	err = l.read(func(g *groupState) error { st = slices.Clone(g.state); return nil })
	return st, err
}

func TestConformanceFake(t *testing.T) {
	RunConformanceTests(t, newFakeHarness, Capabilities{Persistent: true, MaxEntrySize: 1 << 20})
}

func TestCrashFake(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 30
	}
	RunCrashTests(t, newFakeHarness, n)
}

func BenchmarkFake(b *testing.B) { RunBenchmarks(b, newFakeHarness) }
