package memory

import (
	"bytes"

	"github.com/chronik-go/chronik/core/storage"
)

// log is the read side of one group of a Store.
type log struct {
	s   *Store
	gid storage.GroupID
}

var _ storage.Log = (*log)(nil)

// group returns the group's log, or an empty one if the store holds none.
// The caller holds s.mu for reading.
func (l *log) group() (*group, error) {
	if l.s.closed {
		return nil, storage.Errorf(storage.CodeClosed, "memory: group %d: store closed", l.gid)
	}
	if g := l.s.groups[l.gid]; g != nil {
		return g, nil
	}
	return newGroup(), nil
}

func (l *log) FirstIndex() (uint64, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group()
	if err != nil {
		return 0, err
	}
	return g.first, nil
}

func (l *log) LastIndex() (uint64, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group()
	if err != nil {
		return 0, err
	}
	return g.last(), nil
}

func (l *log) Term(i uint64) (uint64, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group()
	if err != nil {
		return 0, err
	}
	switch {
	case i+1 < g.first:
		return 0, storage.Errorf(storage.CodeCompacted, "memory: group %d: term %d: compacted below %d", l.gid, i, g.first)
	case i > g.last():
		return 0, storage.Errorf(storage.CodeUnavailable, "memory: group %d: term %d: last index is %d", l.gid, i, g.last())
	}
	return termAt(g, i), nil
}

func (l *log) Entries(lo, hi, maxBytes uint64) ([]storage.Entry, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group()
	if err != nil {
		return nil, err
	}
	switch {
	case lo > hi:
		return nil, storage.Errorf(storage.CodeInvalid, "memory: group %d: entries [%d, %d): bad range", l.gid, lo, hi)
	case lo < g.first:
		return nil, storage.Errorf(storage.CodeCompacted, "memory: group %d: entries from %d: compacted below %d", l.gid, lo, g.first)
	case hi > g.last()+1:
		return nil, storage.Errorf(storage.CodeUnavailable, "memory: group %d: entries to %d: last index is %d", l.gid, hi, g.last())
	}
	src := g.entries[lo-g.first : hi-g.first]
	n := len(src)
	if maxBytes > 0 {
		var size uint64
		for i, e := range src {
			size += e.Size()
			if i > 0 && size > maxBytes {
				n = i
				break
			}
		}
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]storage.Entry, n)
	for i, e := range src[:n] {
		e.Data = bytes.Clone(e.Data)
		out[i] = e
	}
	return out, nil
}

func (l *log) State() ([]byte, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	g, err := l.group()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(g.state), nil
}
