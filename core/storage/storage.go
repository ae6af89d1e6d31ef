package storage

import (
	"context"
	"fmt"
)

// GroupID names a Raft group within a broker's store.
type GroupID uint64

// Kind says what an entry is to the consensus layer. Storage keeps it and
// gives it back; it gives it no meaning.
type Kind uint8

// The kinds the consensus backends use. Values are persisted: append only.
const (
	KindNormal Kind = iota // a proposal (possibly empty: a leader's no-op)
	KindConfChange
	KindConfChangeV2
	KindNoop
)

// Entry is one Raft log entry.
type Entry struct {
	Index uint64
	Term  uint64
	Kind  Kind
	Data  []byte
}

// Size is the entry's size for maxBytes accounting.
func (e Entry) Size() uint64 { return uint64(len(e.Data)) + entryOverhead }

// entryOverhead approximates an entry's framing so that empty entries still
// count against maxBytes.
const entryOverhead = 24

// Position names an entry by index and term.
type Position struct {
	Index uint64
	Term  uint64
}

// GroupWrite is what one Write does to one group; see the package doc for
// the order in which its fields take effect.
type GroupWrite struct {
	Group       GroupID
	Reset       *Position // discard the whole log; it restarts after Reset.Index
	Entries     []Entry   // consecutive; replaces the suffix from Entries[0].Index
	State       []byte    // the group's new state blob (nil: unchanged)
	TruncBefore uint64    // drop entries below this index (0: none)
}

// Store is one broker's log store. See the package doc for the contract.
type Store interface {
	// Write applies ws; with sync it returns after one fsync covering all of
	// them (and every Write before).
	Write(ctx context.Context, ws []GroupWrite, sync bool) error
	// Log returns the read side of group g. A group never written is empty:
	// FirstIndex 1, LastIndex 0, Term(0) = 0, nil state.
	Log(g GroupID) (Log, error)
	// Groups lists the groups that hold entries or state.
	Groups(ctx context.Context) ([]GroupID, error)
	// Drop deletes group g durably. Logs of g obtained before read as empty.
	Drop(ctx context.Context, g GroupID) error
	// Close flushes and releases the store.
	Close() error
}

// Log is the read side of one group, served from memory (an index and,
// where the store keeps one, a tail cache).
type Log interface {
	// FirstIndex is the index of the first entry held (LastIndex+1 if none).
	FirstIndex() (uint64, error)
	// LastIndex is the index of the last entry held (FirstIndex-1 if none).
	LastIndex() (uint64, error)
	// Term is the term of entry i, for FirstIndex-1 <= i <= LastIndex.
	Term(i uint64) (uint64, error)
	// Entries returns entries [lo, hi), stopping once their total Size would
	// pass maxBytes, but always at least one (0 maxBytes means no limit).
	Entries(lo, hi, maxBytes uint64) ([]Entry, error)
	// State returns the group's state blob (nil if never written).
	State() ([]byte, error)
}

// Stats is an optional capability: a store that reports what it did.
type Stats interface {
	// Syncs is the number of fsyncs done so far.
	Syncs() uint64
}

// CheckWrite validates the shape of one GroupWrite against a log whose
// current bounds are first and last. Stores call it before touching
// anything, so that a bad batch is rejected whole.
func CheckWrite(w *GroupWrite, first, last uint64) error {
	if w.Reset != nil {
		first, last = w.Reset.Index+1, w.Reset.Index
	}
	if n := len(w.Entries); n > 0 {
		lo := w.Entries[0].Index
		if lo > last+1 {
			return Errorf(CodeInvalid, "group %d: gap: first new index %d after last index %d", w.Group, lo, last)
		}
		if lo < first {
			return Errorf(CodeInvalid, "group %d: index %d is below first index %d", w.Group, lo, first)
		}
		for i := 1; i < n; i++ {
			if w.Entries[i].Index != lo+uint64(i) {
				return Errorf(CodeInvalid, "group %d: entries not consecutive at %d", w.Group, w.Entries[i].Index)
			}
		}
		last = w.Entries[n-1].Index
	}
	if w.TruncBefore > last+1 {
		return Errorf(CodeInvalid, "group %d: truncate before %d past last index %d", w.Group, w.TruncBefore, last)
	}
	return nil
}

// CheckWrites validates a whole batch with CheckWrite, following the
// bounds each GroupWrite leaves for the next one of the same group. bounds
// returns a group's current first and last index (1 and 0 for a group never
// written). Stores call it before touching anything.
func CheckWrites(ws []GroupWrite, bounds func(GroupID) (first, last uint64)) error {
	type span struct{ first, last uint64 }
	var seen map[GroupID]span
	for i := range ws {
		w := &ws[i]
		b, ok := seen[w.Group]
		if !ok {
			b.first, b.last = bounds(w.Group)
		}
		if err := CheckWrite(w, b.first, b.last); err != nil {
			return err
		}
		if i == len(ws)-1 {
			break // no later write to check against these bounds
		}
		if w.Reset != nil {
			b = span{w.Reset.Index + 1, w.Reset.Index}
		}
		if n := len(w.Entries); n > 0 {
			b.last = w.Entries[n-1].Index
		}
		if w.TruncBefore > b.first {
			b.first = w.TruncBefore
		}
		if seen == nil {
			seen = make(map[GroupID]span)
		}
		seen[w.Group] = b
	}
	return nil
}

// String is for logs.
func (p Position) String() string { return fmt.Sprintf("%d/%d", p.Index, p.Term) }
