package consensuspb

import (
	"github.com/chronik-go/chronik/core/consensus"
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

// trimPrefix drops the "consensus: <code>: " an Error's message starts
// with, which the decoded Error adds again.
func trimPrefix(m string) string {
	for _, p := range []string{"consensus: "} {
		if len(m) >= len(p) && m[:len(p)] == p {
			m = m[len(p):]
			// the code's name, and the leader hint if any, up to ": "
			for i := 0; i+1 < len(m); i++ {
				if m[i] == ':' && m[i+1] == ' ' {
					return m[i+2:]
				}
			}
			return ""
		}
	}
	return m
}

// EntriesOf encodes entries.
func EntriesOf(es []consensus.Entry) *Entries {
	out := &Entries{Entries: make([]*Entry, len(es))}
	for i, e := range es {
		out.Entries[i] = &Entry{Index: e.Index, Term: e.Term, Data: e.Data}
	}
	return out
}

// Decode returns the entries.
func (x *Entries) Decode() []consensus.Entry {
	es := make([]consensus.Entry, len(x.GetEntries()))
	for i, e := range x.GetEntries() {
		es[i] = consensus.Entry{Index: e.GetIndex(), Term: e.GetTerm(), Data: e.GetData()}
	}
	return es
}
