package wal

import (
	"fmt"

	"github.com/chronik-go/chronik/core/storage"
)

// glog is the read side of one group. Bounds and terms come from the index;
// entry data is read from the segment files with one pread per run of
// adjacent entries, and checked against its CRC.
type glog struct {
	s  *Store
	id storage.GroupID
}

var _ storage.Log = (*glog)(nil)

var emptyGroup = newGroup()

// group returns the group's index, or an empty one. The caller holds s.mu.
func (l *glog) group(what string) (*group, error) {
	if err := l.s.errState(what); err != nil {
		return nil, err
	}
	if g := l.s.groups[l.id]; g != nil {
		return g, nil
	}
	return emptyGroup, nil
}

func (l *glog) FirstIndex() (uint64, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group("first index")
	if err != nil {
		return 0, err
	}
	return g.first, nil
}

func (l *glog) LastIndex() (uint64, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group("last index")
	if err != nil {
		return 0, err
	}
	return g.last(), nil
}

func (l *glog) Term(i uint64) (uint64, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group("term")
	if err != nil {
		return 0, err
	}
	switch {
	case i+1 < g.first:
		return 0, storage.Errorf(storage.CodeCompacted, "wal: group %d: term %d: compacted below %d", l.id, i, g.first)
	case i > g.last():
		return 0, storage.Errorf(storage.CodeUnavailable, "wal: group %d: term %d: last index is %d", l.id, i, g.last())
	}
	return g.term(i), nil
}

func (l *glog) State() ([]byte, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group("state")
	if err != nil {
		return nil, err
	}
	if g.state == nil {
		return nil, nil
	}
	return append([]byte{}, g.state...), nil
}

// maxGap is the most metadata between two entries' data that a single
// read spans rather than splitting (entry headers within a record).
const maxGap = 64

// maxRun bounds one read.
const maxRun = 4 << 20

func (l *glog) Entries(lo, hi, maxBytes uint64) ([]storage.Entry, error) {
	s := l.s
	// segMu keeps the files of the entries found open until they are read.
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	s.mu.RLock()
	g, err := l.group("entries")
	if err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	switch {
	case lo > hi:
		s.mu.RUnlock()
		return nil, storage.Errorf(storage.CodeInvalid, "wal: group %d: entries [%d, %d): bad range", l.id, lo, hi)
	case lo < g.first:
		first := g.first // read under the lock: a write may move it
		s.mu.RUnlock()
		return nil, storage.Errorf(storage.CodeCompacted, "wal: group %d: entries from %d: compacted below %d", l.id, lo, first)
	case hi > g.last()+1:
		last := g.last()
		s.mu.RUnlock()
		return nil, storage.Errorf(storage.CodeUnavailable, "wal: group %d: entries to %d: last index is %d", l.id, hi, last)
	}
	src := g.ents[lo-g.first : hi-g.first]
	n := len(src)
	if maxBytes > 0 {
		var size uint64
		for i := range src {
			size += uint64(src[i].n) + entryOverhead
			if i > 0 && size > maxBytes {
				n = i
				break
			}
		}
	}
	locs := append([]loc(nil), src[:n]...)
	s.mu.RUnlock()
	if n == 0 {
		return nil, nil
	}
	out := make([]storage.Entry, n)
	for i := 0; i < n; {
		// A run: entries adjacent in one segment.
		j, end := i+1, int64(locs[i].off)+int64(locs[i].n)
		for j < n && locs[j].seg == locs[i].seg {
			next := int64(locs[j].off)
			if next < end || next-end > maxGap || next+int64(locs[j].n)-int64(locs[i].off) > maxRun {
				break
			}
			end = next + int64(locs[j].n)
			j++
		}
		start := int64(locs[i].off)
		buf := make([]byte, end-start)
		if _, err := locs[i].seg.f.ReadAt(buf, start); err != nil {
			return nil, storage.Errorf(storage.CodeInternal, "wal: group %d: read %s at %d: %w", l.id, locs[i].seg.path, start, err)
		}
		for k := i; k < j; k++ {
			c := &locs[k]
			a := int64(c.off) - start
			data := buf[a : a+int64(c.n) : a+int64(c.n)]
			if crc(data) != c.crc {
				return nil, storage.Errorf(storage.CodeCorrupt, "wal: group %d: entry %d in %s at %d: checksum mismatch", l.id, lo+uint64(k), c.seg.path, c.off)
			}
			out[k] = storage.Entry{Index: lo + uint64(k), Term: c.term, Kind: c.kind, Data: data}
		}
		i = j
	}
	return out, nil
}

// entryOverhead matches storage.Entry.Size.
var entryOverhead = storage.Entry{}.Size()

var _ = fmt.Sprintf
