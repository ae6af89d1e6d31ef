package wal

import "github.com/chronik-go/chronik/core/storage"

// loc is where an entry lives: the index of a group's log.
type loc struct {
	seg  *segment
	off  uint32 // file offset of the entry's data
	n    uint32 // data length
	crc  uint32 // CRC32C of the data
	kind storage.Kind
	term uint64
}

// group is the in-memory index of one group: entries [first, first+len(ents)),
// the term of entry first-1 and the state blob.
type group struct {
	first    uint64
	prevTerm uint64
	ents     []loc
	state    []byte
}

func newGroup() *group { return &group{first: 1} }

func (g *group) last() uint64 { return g.first + uint64(len(g.ents)) - 1 }

// term is the term of entry i, for first-1 <= i <= last.
func (g *group) term(i uint64) uint64 {
	if i+1 == g.first {
		return g.prevTerm
	}
	return g.ents[i-g.first].term
}

// op is one GroupWrite as the index applies it: entries by location, the
// state blob already owned by the store.
type op struct {
	reset       *storage.Position
	first       uint64 // index of locs[0]
	locs        []loc
	state       []byte
	truncBefore uint64
}

// apply performs o in the contract's order. Live writes were checked
// before; during recovery (lenient) the log may begin in the middle of a
// group's history, whose older records were reclaimed: an operation that
// does not connect to what the index holds restarts the group's range there,
// and the checkpoint that made the reclaim possible later sets the exact
// bounds.
func (g *group) apply(o *op, lenient bool) {
	if r := o.reset; r != nil {
		g.first, g.prevTerm, g.ents = r.Index+1, r.Term, nil
	}
	if len(o.locs) > 0 {
		lo := o.first
		if lenient && (lo < g.first || lo > g.last()+1) {
			g.first, g.prevTerm, g.ents = lo, 0, nil
		}
		g.ents = append(g.ents[:lo-g.first], o.locs...)
	}
	if o.state != nil {
		g.state = o.state
	}
	if tb := o.truncBefore; tb > g.first {
		if tb > g.last()+1 { // only when lenient: checked otherwise
			g.first, g.prevTerm, g.ents = tb, 0, nil
			return
		}
		g.prevTerm = g.term(tb - 1)
		g.ents = g.ents[tb-g.first:]
		g.first = tb
		if cap(g.ents) > 2*len(g.ents)+64 {
			g.ents = append([]loc(nil), g.ents...)
		}
	}
}
