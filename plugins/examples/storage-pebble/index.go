package pebblestore

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// run is a maximal span of entries with one term, from start up to the
// next run's start (or LastIndex).
type run struct {
	start, term uint64
}

// index is what the store keeps in memory about one group: enough to answer
// FirstIndex, LastIndex, Term and State without reading Pebble. An index is
// immutable once published (group.idx): a Write builds a new one.
//
// Invariants: first >= 1 and last >= first-1; when last >= first, runs is
// not empty, runs[0].start == first, starts increase and are at most last;
// when the log is empty, runs is nil. Terms are not assumed to be
// non-decreasing (Raft makes them so, which keeps runs short).
type index struct {
	first    uint64
	last     uint64
	prevTerm uint64 // Term(first-1)
	runs     []run
	state    []byte // nil: never written
}

// emptyIndex is a group never written.
var emptyIndex = &index{first: 1}

// term is the term of entry i, for first-1 <= i <= last.
func (x *index) term(i uint64) uint64 {
	if i+1 == x.first {
		return x.prevTerm
	}
	return x.runs[x.runAt(i)].term
}

// runAt is the position in runs of the run holding entry i, for
// first <= i <= last.
func (x *index) runAt(i uint64) int {
	return sort.Search(len(x.runs), func(k int) bool { return x.runs[k].start > i }) - 1
}

// clone returns a copy of x that may be changed without changing x.
func (x *index) clone() index {
	c := *x
	c.runs = slices.Clip(c.runs) // appends copy; in-place edits clone first
	return c
}

// group is a group's slot in the store.
//
// wmu is held by the Write or Drop that changes the group, from checking
// its batch against idx until the new idx is published: the Writes of one
// group are checked, applied to Pebble and published one at a time, in one
// order. rmu is held for writing only while the batch is applied to Pebble
// and idx published, and for reading by Entries while it checks idx and
// opens its Pebble iterator: so that the iterator sees exactly the writes
// idx describes. idx itself is read without locks.
type group struct {
	wmu  sync.Mutex
	rmu  sync.RWMutex
	dead bool // under wmu: removed from Store.groups; look the group up again
	idx  atomic.Pointer[index]
}

// index returns the group's published index, or emptyIndex.
func (g *group) index() *index {
	if g == nil {
		return emptyIndex
	}
	if x := g.idx.Load(); x != nil {
		return x
	}
	return emptyIndex
}
