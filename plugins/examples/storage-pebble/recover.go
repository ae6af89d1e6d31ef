package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chronik-go/chronik/core/storage"
)

// recover checks the format key (writing it into a new database) and
// rebuilds the index of every group from its keys (scanIndexes).
func (s *Store) recover() error {
	if err := s.checkFormat(); err != nil {
		return err
	}
	xs, err := scanIndexes(s.db)
	if err != nil {
		c := storage.CodeInternal
		var ce *corruptError
		if errors.As(err, &ce) || pebble.IsCorruptionError(err) {
			c = storage.CodeCorrupt
		}
		return storage.Errorf(c, "pebble: recover %s: %w", s.dir, err)
	}
	for id, x := range xs {
		g := &group{}
		g.idx.Store(x)
		s.groups[id] = g
	}
	return nil
}

// scanIndexes reads the index of every group from db. It reads each
// group's meta, state and term run keys, and of its entries only the first
// and the last key (two seeks): entry values are never read, so recovery
// costs a few seeks per group however long the logs are.
func scanIndexes(db *pebble.DB) (map[storage.GroupID]*index, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGroup}, UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	xs := make(map[storage.GroupID]*index)
	var (
		cur   *index // the group being read
		curID storage.GroupID
	)
	done := func() error {
		if err := cur.validate(); err != nil {
			return &corruptError{fmt.Sprintf("group %d: %v", curID, err)}
		}
		xs[curID] = cur
		cur = nil
		return nil
	}
	corrupt := func(err error) error {
		return &corruptError{fmt.Sprintf("key %x: %v", it.Key(), err)}
	}
	for ok := it.First(); ok; {
		k, err := parseKey(it.Key())
		if err != nil {
			return nil, corrupt(err)
		}
		if cur != nil && k.group != curID {
			if err := done(); err != nil {
				return nil, err
			}
		}
		if cur == nil {
			cur, curID = &index{first: 1}, k.group
		}
		if k.kind == kindEntry {
			// The log is [first entry, last entry]: seek to the last one,
			// then past the group.
			if k.index != cur.first {
				return nil, corrupt(fmt.Errorf("first entry %d, but FirstIndex is %d", k.index, cur.first))
			}
			if !it.SeekLT(kindEnd(curID, kindEntry)) {
				return nil, &corruptError{fmt.Sprintf("group %d: no last entry (%v)", curID, it.Error())}
			}
			last, err := parseKey(it.Key())
			if err != nil || last.group != curID || last.kind != kindEntry {
				return nil, corrupt(fmt.Errorf("last entry key of group %d expected", curID))
			}
			cur.last = last.index
			if err := done(); err != nil {
				return nil, err
			}
			ok = it.SeekGE(groupEnd(curID))
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		switch k.kind {
		case kindMeta:
			if cur.first, cur.prevTerm, err = decodeMeta(v); err != nil {
				return nil, corrupt(err)
			}
		case kindState:
			cur.state = append([]byte{}, v...)
		case kindRun:
			t, err := decodeTerm(v)
			if err != nil {
				return nil, corrupt(err)
			}
			cur.runs = append(cur.runs, run{start: k.index, term: t})
		}
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if cur != nil {
		if err := done(); err != nil {
			return nil, err
		}
	}
	return xs, nil
}

// corruptError is a key or value that breaks the layout.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return e.msg }

// validate checks the invariants of an index read back from Pebble, whose
// last is still 0 when the group has no entries.
func (x *index) validate() error {
	if x.first == 0 {
		return errors.New("FirstIndex 0")
	}
	if x.last < x.first {
		x.last = x.first - 1 // no entries
		if len(x.runs) > 0 {
			return fmt.Errorf("term runs %v but no entries", x.runs)
		}
		return nil
	}
	if len(x.runs) == 0 || x.runs[0].start != x.first || x.runs[len(x.runs)-1].start > x.last {
		return fmt.Errorf("term runs %v do not cover entries [%d, %d]", x.runs, x.first, x.last)
	}
	return nil
}

// checkFormat checks the format key, or writes it into a database that
// holds nothing yet.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := s.db.NewIter(nil)
		if err != nil {
			return storage.Errorf(storage.CodeInternal, "pebble: open %s: %w", s.dir, err)
		}
		empty := !it.First()
		_ = it.Close()
		if !empty {
			return storage.Errorf(storage.CodeCorrupt, "pebble: open %s: a Pebble database, but not a Chronik store (no format key)", s.dir)
		}
		if err := s.db.Set(formatKey, binary.AppendUvarint(nil, formatVersion), pebble.Sync); err != nil {
			return storage.Errorf(storage.CodeInternal, "pebble: open %s: write format key: %w", s.dir, err)
		}
		return nil
	case err != nil:
		return storage.Errorf(storage.CodeInternal, "pebble: open %s: read format key: %w", s.dir, err)
	}
	defer closer.Close()
	if ver, n := binary.Uvarint(v); n != len(v) || ver != formatVersion {
		return storage.Errorf(storage.CodeCorrupt, "pebble: open %s: store format %x, want version %d", s.dir, v, formatVersion)
	}
	return nil
}
