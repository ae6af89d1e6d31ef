package plugins

import (
	"sync"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// unappliedPerGroup bounds the bytes of one group's entries kept between
// their write and their apply.
const unappliedPerGroup = 16 << 20

// unapplied keeps the data of a group's entries from the moment the plugin
// wrote them to the broker's store until the plugin applies them, so that
// an apply, which crosses without data, finds it here rather than reading
// the store. Entries are kept in index order; an entry not here (evicted,
// or written before the engine started) is read from the store.
type unapplied struct {
	mu    sync.Mutex
	ents  []storage.Entry // consecutive indexes
	bytes int
}

// written records w's entries: a write from index i on replaces what was
// kept from i on; a reset or a truncation drops what it drops.
func (u *unapplied) written(w *storage.GroupWrite) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if w.Reset != nil {
		u.dropFrom(0)
	}
	if len(w.Entries) > 0 {
		first := w.Entries[0].Index
		if len(u.ents) > 0 && (first <= u.ents[0].Index || first > u.ents[len(u.ents)-1].Index+1) {
			u.dropFrom(0)
		}
		if len(u.ents) > 0 {
			u.dropFrom(first)
		}
		for _, e := range w.Entries {
			if e.Kind != storage.KindNormal {
				// Not applied as data: keep the run consecutive by
				// starting over after it.
				u.dropFrom(0)
				continue
			}
			if len(u.ents) > 0 && e.Index != u.ents[len(u.ents)-1].Index+1 {
				u.dropFrom(0)
			}
			u.ents = append(u.ents, e)
			u.bytes += len(e.Data)
		}
		for u.bytes > unappliedPerGroup && len(u.ents) > 0 {
			u.bytes -= len(u.ents[0].Data)
			u.ents[0] = storage.Entry{}
			u.ents = u.ents[1:]
		}
	}
	if w.TruncBefore > 0 {
		u.appliedLocked(w.TruncBefore - 1)
	}
}

// dropFrom drops the entries from index i on (all of them for 0).
func (u *unapplied) dropFrom(i uint64) {
	if len(u.ents) == 0 {
		return
	}
	k := 0
	if i > u.ents[0].Index {
		k = min(int(i-u.ents[0].Index), len(u.ents))
	}
	for j := k; j < len(u.ents); j++ {
		u.bytes -= len(u.ents[j].Data)
		u.ents[j] = storage.Entry{}
	}
	u.ents = u.ents[:k]
}

// get returns the data of the entry at index if it is kept with term.
func (u *unapplied) get(index, term uint64) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.ents) == 0 || index < u.ents[0].Index || index > u.ents[len(u.ents)-1].Index {
		return nil, false
	}
	e := u.ents[index-u.ents[0].Index]
	if e.Term != term {
		return nil, false
	}
	return e.Data, true
}

// applied drops the entries up to index.
func (u *unapplied) applied(index uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.appliedLocked(index)
}

func (u *unapplied) appliedLocked(index uint64) {
	for len(u.ents) > 0 && u.ents[0].Index <= index {
		u.bytes -= len(u.ents[0].Data)
		u.ents[0] = storage.Entry{}
		u.ents = u.ents[1:]
	}
	if len(u.ents) == 0 {
		u.ents = nil
	}
}

// written is the broker's store server's hook: every write the plugin
// made, once the store applied it.
func (e *Engine) written(ws []storage.GroupWrite) {
	for i := range ws {
		if g := e.group(consensus.GroupID(ws[i].Group)); g != nil {
			g.unapplied.written(&ws[i])
		}
	}
}
