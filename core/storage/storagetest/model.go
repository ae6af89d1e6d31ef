package storagetest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/chronik-go/chronik/core/storage"
)

// model is the reference the suite compares stores with: the contract of
// package storage, executed as plainly as possible.
type model struct {
	groups map[storage.GroupID]*groupState
}

// groupState is one group's log as the contract describes it. The zero
// value is not valid; emptyGroup is a group never written.
type groupState struct {
	first    uint64
	prevTerm uint64 // Term(first-1)
	entries  []storage.Entry
	state    []byte
}

func emptyGroup() *groupState { return &groupState{first: 1} }

func (g *groupState) last() uint64 { return g.first + uint64(len(g.entries)) - 1 }

// holds reports whether the group holds entries or state, that is whether
// Groups must list it.
func (g *groupState) holds() bool { return len(g.entries) > 0 || g.state != nil }

func (g *groupState) clone() *groupState {
	c := *g
	c.entries = cloneEntries(g.entries)
	c.state = bytes.Clone(g.state)
	return &c
}

func (g *groupState) term(i uint64) uint64 {
	if i == g.first-1 {
		return g.prevTerm
	}
	return g.entries[i-g.first].Term
}

func newModel() *model { return &model{groups: make(map[storage.GroupID]*groupState)} }

func (m *model) clone() *model {
	c := newModel()
	for id, g := range m.groups {
		c.groups[id] = g.clone()
	}
	return c
}

// group returns group id's state, or an empty group.
func (m *model) group(id storage.GroupID) *groupState {
	if g := m.groups[id]; g != nil {
		return g
	}
	return emptyGroup()
}

// ids returns the groups the model has seen, sorted.
func (m *model) ids() []storage.GroupID {
	return slices.Sorted(maps.Keys(m.groups))
}

// check validates ws in order, as a store must before applying any of it.
func (m *model) check(ws []storage.GroupWrite) error {
	c := &model{groups: make(map[storage.GroupID]*groupState)}
	for i := range ws {
		w := &ws[i]
		g := c.groups[w.Group]
		if g == nil {
			g = m.group(w.Group).clone()
			c.groups[w.Group] = g
		}
		if err := storage.CheckWrite(w, g.first, g.last()); err != nil {
			return err
		}
		g.apply(w)
	}
	return nil
}

// write applies ws whole, or returns CheckWrite's error and applies nothing.
func (m *model) write(ws []storage.GroupWrite) error {
	if err := m.check(ws); err != nil {
		return err
	}
	for i := range ws {
		m.apply(&ws[i])
	}
	return nil
}

// apply applies one GroupWrite that passed check.
func (m *model) apply(w *storage.GroupWrite) {
	if w.Reset == nil && len(w.Entries) == 0 && w.State == nil && w.TruncBefore == 0 {
		return
	}
	g := m.groups[w.Group]
	if g == nil {
		g = emptyGroup()
		m.groups[w.Group] = g
	}
	g.apply(w)
}

func (g *groupState) apply(w *storage.GroupWrite) {
	if r := w.Reset; r != nil {
		g.first, g.prevTerm, g.entries = r.Index+1, r.Term, nil
	}
	if len(w.Entries) > 0 {
		g.entries = append(g.entries[:w.Entries[0].Index-g.first:w.Entries[0].Index-g.first], cloneEntries(w.Entries)...)
	}
	if w.State != nil {
		g.state = bytes.Clone(w.State)
	}
	if w.TruncBefore > g.first {
		g.prevTerm = g.term(w.TruncBefore - 1)
		g.entries = slices.Clone(g.entries[w.TruncBefore-g.first:])
		g.first = w.TruncBefore
	}
}

func (m *model) drop(id storage.GroupID) { delete(m.groups, id) }

func cloneEntries(es []storage.Entry) []storage.Entry {
	out := make([]storage.Entry, len(es))
	for i, e := range es {
		e.Data = bytes.Clone(e.Data)
		out[i] = e
	}
	return out
}

// readGroup reads everything the store holds for group id.
func readGroup(s storage.Store, id storage.GroupID) (*groupState, error) {
	l, err := s.Log(id)
	if err != nil {
		return nil, fmt.Errorf("Log(%d): %w", id, err)
	}
	first, err := l.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("group %d: FirstIndex: %w", id, err)
	}
	last, err := l.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("group %d: LastIndex: %w", id, err)
	}
	if first == 0 || last+1 < first {
		return nil, fmt.Errorf("group %d: FirstIndex %d, LastIndex %d", id, first, last)
	}
	g := &groupState{first: first}
	if g.prevTerm, err = l.Term(first - 1); err != nil {
		return nil, fmt.Errorf("group %d: Term(FirstIndex-1 = %d): %w", id, first-1, err)
	}
	if last >= first {
		if g.entries, err = l.Entries(first, last+1, 0); err != nil {
			return nil, fmt.Errorf("group %d: Entries(%d, %d, 0): %w", id, first, last+1, err)
		}
		if uint64(len(g.entries)) != last+1-first {
			return nil, fmt.Errorf("group %d: Entries(%d, %d, 0) returned %d entries, want %d", id, first, last+1, len(g.entries), last+1-first)
		}
		for i, e := range g.entries {
			t, err := l.Term(e.Index)
			if err != nil {
				return nil, fmt.Errorf("group %d: Term(%d): %w", id, e.Index, err)
			}
			if t != e.Term {
				return nil, fmt.Errorf("group %d: Term(%d) = %d, but Entries says %d", id, e.Index, t, e.Term)
			}
			if e.Index != first+uint64(i) {
				return nil, fmt.Errorf("group %d: Entries(%d, ...)[%d] has index %d", id, first, i, e.Index)
			}
		}
	}
	if g.state, err = l.State(); err != nil {
		return nil, fmt.Errorf("group %d: State: %w", id, err)
	}
	return g, nil
}

// diff describes how got differs from want, or returns "".
func diff(got, want *groupState) string {
	var d []string
	if got.first != want.first || got.last() != want.last() {
		d = append(d, fmt.Sprintf("log [%d, %d], want [%d, %d]", got.first, got.last(), want.first, want.last()))
	}
	if got.prevTerm != want.prevTerm {
		d = append(d, fmt.Sprintf("Term(FirstIndex-1) = %d, want %d", got.prevTerm, want.prevTerm))
	}
	if !bytes.Equal(got.state, want.state) {
		d = append(d, fmt.Sprintf("state %s, want %s", short(got.state), short(want.state)))
	}
	if len(d) == 0 {
		for i := range got.entries {
			if s := diffEntry(got.entries[i], want.entries[i]); s != "" {
				d = append(d, s)
				break
			}
		}
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func diffEntry(got, want storage.Entry) string {
	if got.Index != want.Index || got.Term != want.Term || got.Kind != want.Kind || !bytes.Equal(got.Data, want.Data) {
		return fmt.Sprintf("entry %s, want %s", fmtEntry(got), fmtEntry(want))
	}
	return ""
}

func fmtEntry(e storage.Entry) string {
	return fmt.Sprintf("{index %d term %d kind %d data %s}", e.Index, e.Term, e.Kind, short(e.Data))
}

// short prints a blob briefly.
func short(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) <= 16 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q...(%d bytes)", b[:16], len(b))
}
