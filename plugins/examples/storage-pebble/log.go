package pebblestore

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/chronik-go/chronik/core/storage"
)

// glog is the read side of one group. FirstIndex, LastIndex, Term and State
// come from the group's in-memory index; Entries reads Pebble.
type glog struct {
	s  *Store
	id storage.GroupID
}

var _ storage.Log = (*glog)(nil)

// index returns the group's index (emptyIndex for a group not in the
// store), or the error of a closed or failed store.
func (l *glog) index(what string) (*index, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	if err := l.s.errState(what); err != nil {
		return nil, err
	}
	return l.s.groups[l.id].index(), nil
}

func (l *glog) FirstIndex() (uint64, error) {
	x, err := l.index("first index")
	if err != nil {
		return 0, err
	}
	return x.first, nil
}

func (l *glog) LastIndex() (uint64, error) {
	x, err := l.index("last index")
	if err != nil {
		return 0, err
	}
	return x.last, nil
}

func (l *glog) Term(i uint64) (uint64, error) {
	x, err := l.index("term")
	if err != nil {
		return 0, err
	}
	switch {
	case i+1 < x.first:
		return 0, storage.Errorf(storage.CodeCompacted, "pebble: group %d: term %d: compacted below %d", l.id, i, x.first)
	case i > x.last:
		return 0, storage.Errorf(storage.CodeUnavailable, "pebble: group %d: term %d: last index is %d", l.id, i, x.last)
	}
	return x.term(i), nil
}

func (l *glog) State() ([]byte, error) {
	x, err := l.index("state")
	if err != nil {
		return nil, err
	}
	if x.state == nil {
		return nil, nil
	}
	return append([]byte{}, x.state...), nil
}

// Entries checks [lo, hi) against the index and reads the entries with a
// Pebble iterator opened under the group's rmu, so that it sees what the
// index describes (see group); it copies what it returns.
func (l *glog) Entries(lo, hi, maxBytes uint64) ([]storage.Entry, error) {
	s := l.s
	s.mu.RLock()
	if err := s.errState("entries"); err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	s.inflight.Add(1) // the iterator must be closed before Pebble
	g := s.groups[l.id]
	s.mu.RUnlock()
	defer s.inflight.Done()
	var it *pebble.Iterator
	if g != nil {
		g.rmu.RLock()
	}
	x := g.index()
	err := checkRange(l.id, x, lo, hi)
	if err == nil && lo < hi {
		it, err = s.db.NewIter(&pebble.IterOptions{
			LowerBound: indexKey(l.id, kindEntry, lo),
			UpperBound: indexKey(l.id, kindEntry, hi),
		})
		if err != nil {
			err = storage.Errorf(storage.CodeInternal, "pebble: group %d: entries [%d, %d): %w", l.id, lo, hi, err)
		}
	}
	if g != nil {
		g.rmu.RUnlock()
	}
	if err != nil || lo == hi {
		return nil, err
	}
	es, err := readEntries(it, l.id, lo, hi, maxBytes)
	if cerr := it.Close(); err == nil && cerr != nil {
		err = storage.Errorf(storage.CodeInternal, "pebble: group %d: entries [%d, %d): %w", l.id, lo, hi, cerr)
	}
	if err != nil {
		return nil, err
	}
	return es, nil
}

// checkRange checks Entries(lo, hi) against index x.
func checkRange(id storage.GroupID, x *index, lo, hi uint64) error {
	switch {
	case lo > hi:
		return storage.Errorf(storage.CodeInvalid, "pebble: group %d: entries [%d, %d): bad range", id, lo, hi)
	case lo < x.first:
		return storage.Errorf(storage.CodeCompacted, "pebble: group %d: entries from %d: compacted below %d", id, lo, x.first)
	case hi > x.last+1:
		return storage.Errorf(storage.CodeUnavailable, "pebble: group %d: entries to %d: last index is %d", id, hi, x.last)
	}
	return nil
}

// readEntries reads entries [lo, hi) of group id from it, whose bounds are
// those entries' keys, stopping before maxBytes is passed (but returning at
// least one).
func readEntries(it *pebble.Iterator, id storage.GroupID, lo, hi, maxBytes uint64) ([]storage.Entry, error) {
	out := make([]storage.Entry, 0, min(hi-lo, 64))
	var size uint64
	next := lo
	for ok := it.First(); ok; ok = it.Next() {
		k, err := parseKey(it.Key())
		if err != nil || k.kind != kindEntry || k.group != id || k.index != next {
			return nil, storage.Errorf(storage.CodeCorrupt, "pebble: group %d: entries [%d, %d): found key %x where entry %d should be", id, lo, hi, it.Key(), next)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, readError(id, next, err)
		}
		term, kind, data, err := decodeEntry(v)
		if err != nil {
			return nil, storage.Errorf(storage.CodeCorrupt, "pebble: group %d: entry %d: %w", id, next, err)
		}
		e := storage.Entry{Index: next, Term: term, Kind: kind}
		size += uint64(len(data)) + entryOverhead
		if maxBytes > 0 && len(out) > 0 && size > maxBytes {
			return out, nil
		}
		e.Data = append([]byte(nil), data...)
		out = append(out, e)
		next++
	}
	if err := it.Error(); err != nil {
		return nil, readError(id, next, err)
	}
	if next != hi {
		// The index said [lo, hi) is there and Pebble, seen at the same
		// point, says otherwise.
		return nil, storage.Errorf(storage.CodeCorrupt, "pebble: group %d: entries [%d, %d): entry %d is missing", id, lo, hi, next)
	}
	return out, nil
}

// readError classifies an error of Pebble's while reading entry i.
func readError(id storage.GroupID, i uint64, err error) error {
	c := storage.CodeInternal
	if pebble.IsCorruptionError(err) {
		c = storage.CodeCorrupt
	}
	return storage.Errorf(c, "pebble: group %d: read entry %d: %w", id, i, err)
}

// entryOverhead matches storage.Entry.Size.
var entryOverhead = storage.Entry{}.Size()
