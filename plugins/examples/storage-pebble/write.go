package pebblestore

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sort"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chronik-go/chronik/core/storage"
)

// Write applies ws as one Pebble batch, committed once; see storage.Store
// and the package doc.
//
// It locks the groups of ws (their wmu, by ascending id), checks the whole
// batch against their indexes (storage.CheckWrites: a bad batch is
// rejected whole, nothing applied), builds the batch, and applies it to
// Pebble while holding the groups' rmu, publishing their new indexes before
// releasing it: a reader of a group sees Pebble and the index change
// together. With sync the batch is applied with ApplyNoSyncWait and Write
// then waits for the fsync of the WAL (Batch.SyncWait) after releasing the
// groups; Pebble's commit pipeline shares that fsync among concurrent
// committers.
func (s *Store) Write(ctx context.Context, ws []storage.GroupWrite, sync bool) error {
	if err := ctx.Err(); err != nil {
		return storage.Errorf(storage.CodeInternal, "pebble: write: %w", err)
	}
	if err := s.enter("write"); err != nil {
		return err
	}
	defer s.inflight.Done()
	size := writeSize(ws)
	if size > MaxWriteSize {
		return storage.Errorf(storage.CodeTooLarge, "pebble: write of about %d bytes exceeds the limit of %d bytes", size, MaxWriteSize)
	}
	ps := s.lockGroups(ws)
	locked := true
	defer func() {
		if locked {
			s.unlock(ps)
		}
	}()
	err := storage.CheckWrites(ws, func(id storage.GroupID) (uint64, uint64) {
		x := &ps.find(id).idx
		return x.first, x.last
	})
	if err != nil {
		return err
	}
	b := s.db.NewBatch(pebble.WithInitialSizeBytes(size))
	for i := range ws {
		if err := ps.find(ws[i].Group).apply(b, &ws[i]); err != nil {
			_ = b.Close()
			return storage.Errorf(storage.CodeInternal, "pebble: write: build batch: %w", err)
		}
	}
	if b.Empty() {
		if !sync || !s.cfg.Sync {
			return b.Close()
		}
		// Nothing to write, but a synced Write makes the Writes before it
		// durable: commit a WAL-only record and sync.
		_ = b.LogData(nil, nil)
	}
	locked = false
	return s.commit(b, ps, sync, "write")
}

// Drop deletes group g with one range deletion, committed like a synced
// Write (with an fsync, unless Config.Sync is off): a returned Drop
// survives a crash, and so does every Write before it, even when g was
// never written. Logs of g read it as empty from then on.
func (s *Store) Drop(ctx context.Context, g storage.GroupID) error {
	if err := ctx.Err(); err != nil {
		return storage.Errorf(storage.CodeInternal, "pebble: drop: %w", err)
	}
	if err := s.enter("drop"); err != nil {
		return err
	}
	defer s.inflight.Done()
	ps := s.lockGroups([]storage.GroupWrite{{Group: g}})
	p := &ps[0]
	p.drop = true
	b := s.db.NewBatch()
	if err := b.DeleteRange(groupStart(g), groupEnd(g), nil); err != nil {
		_ = b.Close()
		s.unlock(ps)
		return storage.Errorf(storage.CodeInternal, "pebble: drop group %d: %w", g, err)
	}
	return s.commit(b, ps, true, "drop")
}

// commit applies b to Pebble, publishes the indexes of ps, unlocks them
// and, for a synced commit, waits for the fsync. It closes b.
func (s *Store) commit(b *pebble.Batch, ps pendings, sync bool, what string) error {
	sync = sync && s.cfg.Sync
	for i := range ps {
		ps[i].g.rmu.Lock()
	}
	var err error
	if sync {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	} else {
		err = b.Commit(pebble.NoSync)
	}
	if err == nil {
		for i := range ps {
			ps[i].publish()
		}
	}
	for i := range ps {
		ps[i].g.rmu.Unlock()
	}
	s.unlock(ps)
	if err != nil {
		// Pebble may still hold b: leave it to the garbage collector.
		return s.fail(what, err)
	}
	if sync {
		err = b.SyncWait()
	}
	_ = b.Close()
	if err != nil {
		return s.fail(what, err)
	}
	return nil
}

// pending is one group locked by a Write or Drop, with its index as the
// batch being built leaves it.
type pending struct {
	id      storage.GroupID
	g       *group
	idx     index
	touched bool // the batch writes a key of the group: publish idx
	drop    bool // the batch drops the group: publish nil
}

// pendings are the groups of one batch, by ascending id.
type pendings []pending

func (ps pendings) find(id storage.GroupID) *pending {
	i, _ := slices.BinarySearchFunc(ps, id, func(p pending, id storage.GroupID) int { return cmp.Compare(p.id, id) })
	return &ps[i]
}

// lockGroups locks the groups of ws (each once, by ascending id), adding
// a slot for each group not in the store yet.
func (s *Store) lockGroups(ws []storage.GroupWrite) pendings {
	ps := make(pendings, 0, len(ws))
	for i := range ws {
		ps = append(ps, pending{id: ws[i].Group})
	}
	if len(ps) > 1 {
		slices.SortFunc(ps, func(a, b pending) int { return cmp.Compare(a.id, b.id) })
		ps = slices.CompactFunc(ps, func(a, b pending) bool { return a.id == b.id })
	}
	for i := range ps {
		p := &ps[i]
		p.g = s.lockGroup(p.id)
		p.idx = p.g.index().clone()
	}
	return ps
}

// lockGroup returns the slot of group id, with its wmu held.
func (s *Store) lockGroup(id storage.GroupID) *group {
	for {
		s.mu.RLock()
		g := s.groups[id]
		s.mu.RUnlock()
		if g == nil {
			s.mu.Lock()
			if g = s.groups[id]; g == nil {
				g = &group{}
				s.groups[id] = g
			}
			s.mu.Unlock()
		}
		g.wmu.Lock()
		if !g.dead {
			return g
		}
		g.wmu.Unlock() // dropped or removed while we waited: look again
	}
}

// unlock releases the groups of ps. A group that holds nothing in Pebble
// (dropped, or only ever written with no effect) leaves the store's map.
func (s *Store) unlock(ps pendings) {
	for i := range ps {
		g := ps[i].g
		if g.idx.Load() == nil {
			s.mu.Lock()
			if s.groups[ps[i].id] == g {
				delete(s.groups, ps[i].id)
			}
			s.mu.Unlock()
			g.dead = true
		}
		g.wmu.Unlock()
	}
}

// publish makes the group's new index the one readers see. The caller
// holds the group's wmu and rmu, and has applied the batch to Pebble.
func (p *pending) publish() {
	switch {
	case p.drop:
		p.g.idx.Store(nil)
	case p.touched:
		x := p.idx
		p.g.idx.Store(&x)
	}
}

// apply adds w to b, in the order of the contract, and updates p.idx to
// match. w has been checked (storage.CheckWrites) against p.idx. The term
// run keys are kept equal to p.idx.runs.
func (p *pending) apply(b *pebble.Batch, w *storage.GroupWrite) error {
	x, g := &p.idx, w.Group
	var err error
	set := func(key, value []byte) {
		if err == nil {
			err = b.Set(key, value, nil)
		}
	}
	deleteRange := func(start, end []byte) {
		if err == nil {
			err = b.DeleteRange(start, end, nil)
		}
	}
	if r := w.Reset; r != nil {
		deleteRange(groupKey(g, kindRun), kindEnd(g, kindEntry)) // runs and entries
		x.first, x.last, x.prevTerm, x.runs = r.Index+1, r.Index, r.Term, nil
		set(groupKey(g, kindMeta), encodeMeta(x.first, x.prevTerm))
		p.touched = true
	}
	if n := len(w.Entries); n > 0 {
		lo := w.Entries[0].Index
		if lo <= x.last {
			// Replace the suffix from lo: its entries, and the runs that
			// start in it (the run holding lo-1 keeps its key).
			deleteRange(indexKey(g, kindEntry, lo), kindEnd(g, kindEntry))
			k := sort.Search(len(x.runs), func(k int) bool { return x.runs[k].start >= lo })
			if k < len(x.runs) {
				deleteRange(indexKey(g, kindRun, lo), kindEnd(g, kindRun))
				x.runs = x.runs[:k:k] // the next append copies
			}
		}
		for i := range w.Entries {
			e := &w.Entries[i]
			if len(x.runs) == 0 || x.runs[len(x.runs)-1].term != e.Term {
				x.runs = append(x.runs, run{start: e.Index, term: e.Term})
				set(indexKey(g, kindRun, e.Index), encodeTerm(e.Term))
			}
			if err == nil {
				err = setEntry(b, g, e)
			}
		}
		x.last = w.Entries[n-1].Index
		p.touched = true
	}
	if w.State != nil {
		set(groupKey(g, kindState), w.State)
		x.state = bytes.Clone(w.State) // non-nil, even when empty
		p.touched = true
	}
	if tb := w.TruncBefore; tb > x.first {
		prevTerm := x.term(tb - 1)
		deleteRange(groupKey(g, kindEntry), indexKey(g, kindEntry, tb))
		if tb <= x.last {
			// The run holding tb now starts at tb.
			j := x.runAt(tb)
			deleteRange(groupKey(g, kindRun), indexKey(g, kindRun, tb))
			if x.runs[j].start != tb {
				set(indexKey(g, kindRun, tb), encodeTerm(x.runs[j].term))
			}
			runs := slices.Clone(x.runs[j:])
			runs[0].start = tb
			x.runs = runs
		} else {
			deleteRange(groupKey(g, kindRun), kindEnd(g, kindRun))
			x.runs = nil
		}
		x.first, x.prevTerm = tb, prevTerm
		set(groupKey(g, kindMeta), encodeMeta(x.first, x.prevTerm))
		p.touched = true
	}
	return err
}

// setEntry adds e's entry key to b, encoding it in place.
func setEntry(b *pebble.Batch, g storage.GroupID, e *storage.Entry) error {
	var hdr [entryHeaderMax]byte
	h := appendEntry(hdr[:0], &storage.Entry{Term: e.Term, Kind: e.Kind})
	op := b.SetDeferred(indexKeyLen, len(h)+len(e.Data))
	putIndexKey(op.Key, g, kindEntry, e.Index)
	copy(op.Value[copy(op.Value, h):], e.Data)
	return op.Finish()
}

// writeSize bounds the size of the batch that ws makes: entry data and
// states, plus an allowance for keys and range deletions.
func writeSize(ws []storage.GroupWrite) int {
	const perEntry = 2*(indexKeyLen+8) + entryHeaderMax + 16 // entry and run key, headers
	const perWrite = 6*indexKeyLen + 64 + 64                 // range deletions, meta, state key
	n := 64
	for i := range ws {
		n += perWrite + len(ws[i].State)
		for j := range ws[i].Entries {
			n += perEntry + len(ws[i].Entries[j].Data)
		}
	}
	return n
}
