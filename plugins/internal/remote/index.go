package remote

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

// tailCache keeps copies of a group's newest entries in the host, so that
// reads of the tail (Raft sending and applying what it just wrote, consumers
// tailing a partition) do not cross the process boundary. Its entries alias
// the packed buffers the writes were sent in, so caching costs no copy on
// write; a read copies them out.
type tailCache struct {
	ents  []storage.Entry // consecutive, ending at the index's last entry
	bytes int
}

func entrySize(e *storage.Entry) int { return len(e.Data) + 24 }

// apply makes the cache follow w (already applied to x), adding views, the
// entries of w aliasing its packed buffer, and keeps at most limit bytes.
// It returns the change in bytes held.
func (c *tailCache) apply(x *index, w *storage.GroupWrite, views []storage.Entry, limit int) int {
	before := c.bytes
	if w.Reset != nil {
		c.dropFront(len(c.ents))
	}
	if len(views) > 0 {
		lo := views[0].Index
		switch n := len(c.ents); {
		case n == 0:
		case lo <= c.ents[0].Index || lo > c.ents[n-1].Index+1:
			c.dropFront(n) // replaced whole, or not contiguous
		default:
			k := int(lo - c.ents[0].Index)
			for i := k; i < n; i++ {
				c.bytes -= entrySize(&c.ents[i])
				c.ents[i] = storage.Entry{}
			}
			c.ents = c.ents[:k]
		}
		for i := range views {
			c.bytes += entrySize(&views[i])
		}
		c.ents = append(c.ents, views...)
	}
	k := 0
	for k < len(c.ents) && (c.ents[k].Index < x.first || c.bytes > limit) {
		c.bytes -= entrySize(&c.ents[k])
		k++
	}
	c.dropFront(k)
	return c.bytes - before
}

// dropFront drops the first k entries (their bytes already subtracted, but
// for a whole drop).
func (c *tailCache) dropFront(k int) {
	if k == len(c.ents) {
		clear(c.ents)
		c.ents, c.bytes = nil, 0
		return
	}
	clear(c.ents[:k])
	c.ents = c.ents[k:]
}

// read answers Entries(lo, hi, maxBytes) from the cache if it holds all of
// [lo, hi), with copies the caller owns; ok is false otherwise.
func (c *tailCache) read(lo, hi, maxBytes uint64) (es []storage.Entry, ok bool) {
	if len(c.ents) == 0 || lo < c.ents[0].Index || hi > c.ents[len(c.ents)-1].Index+1 || lo >= hi {
		return nil, false
	}
	src := c.ents[lo-c.ents[0].Index : hi-c.ents[0].Index]
	n, size, data := len(src), uint64(0), 0
	for i := range src {
		size += src[i].Size()
		if maxBytes > 0 && i > 0 && size > maxBytes {
			n = i
			break
		}
		data += len(src[i].Data)
	}
	buf := make([]byte, 0, data)
	es = make([]storage.Entry, n)
	for i := range es {
		e := src[i]
		if e.Data != nil {
			buf = append(buf, e.Data...)
			e.Data = buf[len(buf)-len(e.Data) : len(buf) : len(buf)]
		}
		es[i] = e
	}
	return es, true
}
