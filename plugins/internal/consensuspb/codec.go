package consensuspb

import (
	"fmt"
	"strings"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// StatusOf encodes err (nil: ok) with its consensus code and leader hint.
func StatusOf(err error) *Status {
	if err == nil {
		return &Status{}
	}
	return &Status{Code: uint32(consensus.CodeOf(err)), Message: err.Error(), Leader: uint64(consensus.LeaderHint(err))}
}

// Err decodes a status: nil for ok, else a *consensus.Error with the code,
// the leader hint and the message.
func (s *Status) Err() error {
	if s == nil || s.Code == uint32(consensus.CodeOK) {
		return nil
	}
	return &consensus.Error{Code: consensus.Code(s.Code), Leader: consensus.NodeID(s.Leader), Msg: trimPrefix(s.Message)}
}

// trimPrefix drops the "consensus: <code>[ (leader N)]: " an Error's
// message starts with, which the decoded Error adds again.
func trimPrefix(m string) string {
	rest, ok := strings.CutPrefix(m, "consensus: ")
	if !ok {
		return m
	}
	_, msg, _ := strings.Cut(rest, ": ")
	return msg
}

// EntriesOf encodes entries; those stored says the broker's store holds
// (at their index, with their term) go without their data.
func EntriesOf(es []consensus.Entry, stored func(index, term uint64) bool) *Entries {
	out := &Entries{Entries: make([]*Entry, len(es))}
	for i, e := range es {
		if stored != nil && stored(e.Index, e.Term) {
			out.Entries[i] = &Entry{Index: e.Index, Term: e.Term, Stored: true}
			continue
		}
		out.Entries[i] = &Entry{Index: e.Index, Term: e.Term, Data: e.Data}
	}
	return out
}

// Decode returns the entries; those marked stored are found by cached
// (the data of the entry at index with term, if at hand) or read from the
// log that log returns (asked only then), which must hold them at their
// index with their term, as normal entries.
func (x *Entries) Decode(cached func(index, term uint64) ([]byte, bool), log func() (storage.Log, error)) ([]consensus.Entry, error) {
	in := x.GetEntries()
	es := make([]consensus.Entry, len(in))
	for i := 0; i < len(in); {
		e := in[i]
		if !e.GetStored() {
			es[i] = consensus.Entry{Index: e.GetIndex(), Term: e.GetTerm(), Data: e.GetData()}
			i++
			continue
		}
		if d, ok := cached(e.GetIndex(), e.GetTerm()); ok {
			es[i] = consensus.Entry{Index: e.GetIndex(), Term: e.GetTerm(), Data: d}
			i++
			continue
		}
		// A run of stored entries with consecutive indexes: one read.
		j := i + 1
		for j < len(in) && in[j].GetStored() && in[j].GetIndex() == in[j-1].GetIndex()+1 {
			if _, ok := cached(in[j].GetIndex(), in[j].GetTerm()); ok {
				break
			}
			j++
		}
		lo, hi := e.GetIndex(), in[j-1].GetIndex()+1
		l, err := log()
		if err != nil {
			return nil, fmt.Errorf("reading applied entries [%d, %d) from the store: %w", lo, hi, err)
		}
		for lo < hi {
			got, err := l.Entries(lo, hi, 0)
			if err == nil && len(got) == 0 {
				err = fmt.Errorf("no entries")
			}
			if err != nil {
				return nil, fmt.Errorf("reading applied entries [%d, %d) from the store: %w", lo, hi, err)
			}
			for _, g := range got {
				k := i + int(g.Index-e.GetIndex())
				if g.Index < lo || g.Index >= hi || g.Term != in[k].GetTerm() || g.Kind != storage.KindNormal {
					return nil, fmt.Errorf("applied entry %d (term %d) is not in the store: found index %d term %d kind %d", in[k].GetIndex(), in[k].GetTerm(), g.Index, g.Term, g.Kind)
				}
				es[k] = consensus.Entry{Index: g.Index, Term: g.Term, Data: g.Data}
			}
			lo = got[len(got)-1].Index + 1
		}
		i = j
	}
	return es, nil
}
