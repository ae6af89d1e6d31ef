package plugins

import (
	"sort"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
)

// index is the host's copy of one group's bounds, terms and state: the
// plugin sends it once, and every Write that returns updates it the way the
// store applied it, so that FirstIndex, LastIndex, Term and State (called
// on every Raft step) never cross the process boundary. Only entry data
// lives in the plugin alone.
type index struct {
	first, last uint64
	runs        []termRun // ascending; the term of i is that of the last run starting at or below i
	state       []byte    // nil: never written
}

type termRun struct{ start, term uint64 }

func emptyIndex() index { return index{first: 1} }

func indexOf(m *storagepb.GroupMeta) index {
	x := index{first: m.GetFirst(), last: m.GetLast()}
	r := m.GetTermRuns()
	for i := 0; i+1 < len(r); i += 2 {
		x.runs = append(x.runs, termRun{r[i], r[i+1]})
	}
	if m.GetHasState() {
		x.state = append([]byte{}, m.GetState()...)
	}
	return x
}

// term answers Term(i) as the store does.
func (x *index) term(i uint64) (uint64, error) {
	if i+1 < x.first {
		return 0, storage.Errorf(storage.CodeCompacted, "index %d is below first index %d", i, x.first)
	}
	if i > x.last {
		return 0, storage.Errorf(storage.CodeUnavailable, "index %d is above last index %d", i, x.last)
	}
	k := sort.Search(len(x.runs), func(k int) bool { return x.runs[k].start > i })
	if k == 0 {
		return 0, nil // index 0 of a log never reset
	}
	return x.runs[k-1].term, nil
}

// apply makes the changes of w, which the store has applied.
func (x *index) apply(w *storage.GroupWrite) {
	if w.Reset != nil {
		x.first, x.last = w.Reset.Index+1, w.Reset.Index
		x.runs = append(x.runs[:0], termRun{w.Reset.Index, w.Reset.Term})
	}
	if n := len(w.Entries); n > 0 {
		lo := w.Entries[0].Index
		k := sort.Search(len(x.runs), func(k int) bool { return x.runs[k].start >= lo })
		x.runs = x.runs[:k]
		for i := range w.Entries {
			e := &w.Entries[i]
			if len(x.runs) == 0 || x.runs[len(x.runs)-1].term != e.Term {
				x.runs = append(x.runs, termRun{e.Index, e.Term})
			}
		}
		x.last = w.Entries[n-1].Index
	}
	if w.State != nil {
		x.state = append(make([]byte, 0, len(w.State)), w.State...)
	}
	if w.TruncBefore > x.first {
		x.first = w.TruncBefore
		// Keep the run holding first-1, which stays answerable.
		k := sort.Search(len(x.runs), func(k int) bool { return x.runs[k].start > x.first-1 })
		if k > 1 {
			x.runs = append(x.runs[:0], x.runs[k-1:]...)
		}
	}
}
