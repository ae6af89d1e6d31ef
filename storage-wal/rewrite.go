package wal

import (
	"fmt"

	"github.com/chronik-go/chronik/core/storage"
)

// rewriteOldest moves live entries forward (raft-engine style), so that a
// group that keeps a few old entries (an idle or slow partition) does not
// pin the oldest segment and every later one. For each group whose oldest
// entry is in the oldest segment and whose entries outside the active
// segment total at most a quarter of a segment, all of those entries are
// rewritten into the active segment, in a relocate record of the group's
// own. Moving all of them keeps a group's entries in segment order, which
// reclaiming relies on. A group with more old data than that keeps
// pinning (see docs/ARCHITECTURE.md). A group that changed meanwhile, or a
// record that would not fit the active segment, waits for a later pass.
// The next reclaim frees what was moved out.
func (s *Store) rewriteOldest() error {
	type move struct {
		id   storage.GroupID
		lo   uint64
		locs []loc
	}
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	s.mu.RLock()
	if err := s.errState("rewrite"); err != nil || len(s.segs) < 2 {
		s.mu.RUnlock()
		return nil
	}
	oldest, active := s.segs[0], s.active()
	limit := s.cfg.SegmentSize / 4
	var moves []move
	for id, g := range s.groups {
		if len(g.ents) == 0 || g.ents[0].seg != oldest {
			continue
		}
		n, size := 0, int64(0)
		for n < len(g.ents) && g.ents[n].seg != active && size <= limit {
			size += int64(g.ents[n].n)
			n++
		}
		if size <= limit {
			moves = append(moves, move{id, g.first, append([]loc(nil), g.ents[:n]...)})
		}
	}
	s.mu.RUnlock()

	moved := 0
	for _, m := range moves {
		w := storage.GroupWrite{Group: m.id, Entries: make([]storage.Entry, len(m.locs))}
		for k, c := range m.locs {
			data := make([]byte, c.n)
			if _, err := c.seg.f.ReadAt(data, int64(c.off)); err != nil {
				return fmt.Errorf("rewrite: read %s at %d: %w", c.seg.path, c.off, err)
			}
			if crc(data) != c.crc {
				return storage.Errorf(storage.CodeCorrupt, "wal: rewrite: group %d entry %d in %s: checksum mismatch", m.id, m.lo+uint64(k), c.seg.path)
			}
			w.Entries[k] = storage.Entry{Index: m.lo + uint64(k), Term: c.term, Kind: c.kind, Data: data}
		}
		meta := appendUvarint(make([]byte, headerSize), 1)
		meta, spl := appendGW(meta, &w, nil)
		offs, dataLen := make([]int64, len(spl)), 0
		for k, x := range spl {
			offs[k] = int64(x.at + dataLen)
			dataLen += len(x.data)
		}
		r := record{metaEnd: len(meta), spl: spl, bodyLen: len(meta) - headerSize + dataLen}
		putHeader(meta, header{bodyLen: uint32(r.bodyLen), bodyCRC: crc(meta[headerSize:]), typ: recRelocate})
		n := len(m.locs)
		s.mu.Lock()
		if err := s.errState("rewrite"); err != nil {
			s.mu.Unlock()
			return nil
		}
		g := s.groups[m.id]
		if s.active() != active || s.off+r.size()+sealSize > s.cfg.SegmentSize ||
			g == nil || g.first != m.lo || len(g.ents) < n || g.ents[0] != m.locs[0] || g.ents[n-1] != m.locs[n-1] ||
			(len(g.ents) > n && g.ents[n].seg != active) {
			s.mu.Unlock()
			continue // the group or the active segment changed meanwhile
		}
		if _, err := s.writeSpliced(meta, &r); err != nil {
			s.mu.Unlock()
			return err
		}
		base := s.off - r.size()
		for k := range n {
			g.ents[k].seg, g.ents[k].off = active, uint32(base+offs[k])
		}
		s.mu.Unlock()
		moved++
	}
	if moved > 0 {
		s.kickReclaim()
	}
	return nil
}

// relocate applies a relocate record during recovery: entries [lo, hi]
// now live here. They join what the index holds of the group when they
// overlap or touch it (replacing the copies there); a group the index does
// not hold starts with them. Anything else is dead and ignored.
func (g *group) relocate(lo uint64, locs []loc) {
	hi := lo + uint64(len(locs)) - 1
	switch {
	case len(g.ents) == 0:
		if lo != g.first {
			g.prevTerm = 0 // unknown until the checkpoint
		}
		g.first, g.ents = lo, append([]loc(nil), locs...)
	case hi+1 < g.first || lo > g.last()+1:
		// Not adjacent: dead entries.
	default:
		first, last := min(lo, g.first), max(hi, g.last())
		ents := make([]loc, last-first+1)
		copy(ents[g.first-first:], g.ents)
		copy(ents[lo-first:], locs)
		prevTerm := g.prevTerm
		if lo < g.first {
			prevTerm = 0 // unknown until the checkpoint
		}
		g.first, g.prevTerm, g.ents = first, prevTerm, ents
	}
}
