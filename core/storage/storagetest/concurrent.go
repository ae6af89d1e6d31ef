package storagetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// testConcurrentGroups runs writers that each own a few groups, and readers
// that check every answer they get while the writers run. Run it with
// -race.
func (c *conformance) testConcurrentGroups(t *testing.T, s storage.Store) {
	const (
		writers   = 8
		perWriter = 4
		writes    = 60
		readers   = 2
	)
	models := make([]*model, writers)
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, writers+readers)
	for w := range writers {
		models[w] = newModel()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			own := make([]storage.GroupID, perWriter)
			for i := range own {
				own[i] = storage.GroupID(w*perWriter + i + 1)
			}
			if err := concurrentWriter(s, models[w], rng, own, writes); err != nil {
				errs <- fmt.Errorf("writer %d: %w", w, err)
			}
		})
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for n := 0; !done.Load() || n < 10; n++ {
				g := storage.GroupID(rng.IntN(writers*perWriter) + 1)
				if err := concurrentRead(s, g, rng); err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all := newModel()
	for _, m := range models {
		for id, g := range m.groups {
			all.groups[id] = g
		}
	}
	checkModel(t, s, all)
}

// concurrentWriter writes to its own groups only. Its logs never shrink:
// overwrites replace as many entries as they remove or more, so that
// readers can check that a group's state (its LastIndex when written)
// never runs ahead of its entries.
func concurrentWriter(s storage.Store, m *model, rng *rand.Rand, own []storage.GroupID, writes int) error {
	for range writes {
		var ws []storage.GroupWrite
		for _, id := range own {
			if rng.IntN(2) == 0 {
				continue
			}
			g := m.group(id)
			last := g.last()
			lo, term := last+1, g.prevTerm+1
			if last >= g.first {
				term = g.entries[len(g.entries)-1].Term
				if rng.IntN(4) == 0 {
					lo = last + 1 - uint64(rng.IntN(min(2, len(g.entries))+1))
					term++
				}
			}
			hi := max(last+uint64(rng.IntN(3)), lo)
			w := storage.GroupWrite{Group: id, Entries: ents(id, lo, hi, term, rng.IntN(200))}
			w.State = binary.BigEndian.AppendUint64(nil, hi)
			if rng.IntN(5) == 0 {
				w.TruncBefore = g.first + uint64(rng.IntN(int(hi-g.first)+2))
			}
			ws = append(ws, w)
		}
		if len(ws) == 0 {
			continue
		}
		if err := m.check(ws); err != nil {
			return fmt.Errorf("bad test: %w", err)
		}
		if err := s.Write(context.Background(), ws, rng.IntN(2) == 0); err != nil {
			return fmt.Errorf("Write: %w", err)
		}
		_ = m.write(ws)
	}
	return nil
}

// concurrentRead reads group g while its writer may be writing and checks
// what it can: entries are those the writer made, in order, and the state
// never runs ahead of LastIndex.
func concurrentRead(s storage.Store, g storage.GroupID, rng *rand.Rand) error {
	l, err := s.Log(g)
	if err != nil {
		return fmt.Errorf("Log(%d): %w", g, err)
	}
	st, err := l.State()
	if err != nil {
		return fmt.Errorf("group %d: State: %w", g, err)
	}
	first, err := l.FirstIndex()
	if err != nil {
		return fmt.Errorf("group %d: FirstIndex: %w", g, err)
	}
	last, err := l.LastIndex()
	if err != nil {
		return fmt.Errorf("group %d: LastIndex: %w", g, err)
	}
	if st != nil {
		if len(st) != 8 {
			return fmt.Errorf("group %d: State %q was never written", g, st)
		}
		if n := binary.BigEndian.Uint64(st); n > last {
			return fmt.Errorf("group %d: State written with entry %d is visible, LastIndex read after it is %d", g, n, last)
		}
	}
	if last < first {
		return nil
	}
	lo := first + uint64(rng.IntN(int(last-first)+1))
	hi := lo + uint64(rng.IntN(int(last-lo)+1)) + 1
	es, err := l.Entries(lo, hi, uint64(rng.IntN(2000)))
	if isRace(err) {
		return nil // truncated or overwritten since FirstIndex/LastIndex
	}
	if err != nil {
		return fmt.Errorf("group %d: Entries(%d, %d): %w", g, lo, hi, err)
	}
	if len(es) == 0 || uint64(len(es)) > hi-lo {
		return fmt.Errorf("group %d: Entries(%d, %d) returned %d entries", g, lo, hi, len(es))
	}
	for i, e := range es {
		if e.Index != lo+uint64(i) || !validEntry(g, e) {
			return fmt.Errorf("group %d: Entries(%d, %d)[%d] = %s was never written", g, lo, hi, i, fmtEntry(e))
		}
		if i > 0 && e.Term < es[i-1].Term {
			return fmt.Errorf("group %d: Entries(%d, %d): terms go down at %d", g, lo, hi, e.Index)
		}
	}
	if term, err := l.Term(lo); err == nil && term < es[0].Term {
		return fmt.Errorf("group %d: Term(%d) = %d after Entries said %d", g, lo, term, es[0].Term)
	} else if err != nil && !isRace(err) {
		return fmt.Errorf("group %d: Term(%d): %w", g, lo, err)
	}
	return nil
}

// testConcurrentSameGroup has several goroutines take turns writing one
// group, as the goroutines of a consensus backend's worker pool do.
func (c *conformance) testConcurrentSameGroup(t *testing.T, s storage.Store) {
	const (
		writers = 4
		writes  = 50
	)
	var mu sync.Mutex // one writer of the group at a time
	m := newModel()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				mu.Lock()
				last := m.group(1).last()
				ws := []storage.GroupWrite{{Group: 1, Entries: ents(1, last+1, last+2, 1, 50), State: []byte(fmt.Sprint(w, i))}}
				err := s.Write(context.Background(), ws, i%2 == 0)
				if err == nil {
					_ = m.write(ws)
				}
				mu.Unlock()
				if err != nil {
					errs <- fmt.Errorf("writer %d: Write: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkModel(t, s, m)
}
