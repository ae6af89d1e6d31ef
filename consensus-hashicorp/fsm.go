package hashicorp

import (
	"encoding/binary"
	"io"

	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// fsm adapts a group's consensus.StateMachine to the library's FSM. The
// library calls Apply, Snapshot and Restore from its FSM goroutine (Restore
// also from NewRaft, before any other call); LeaderChanged comes from the
// group's delivery goroutine. All of them take the group's smMu, so the
// state machine is called by one goroutine at a time, never after the
// group stopped.
type fsm group

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch passes the proposals (LogCommand) of a committed batch to the
// state machine, then completes the proposals this node made (recognised by
// the token in their Extensions, which only the leader's in-memory copy
// carries).
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	g := (*group)(f)
	ents := make([]consensus.Entry, 0, len(logs))
	type done struct{ tok, index uint64 }
	var dones []done
	for _, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		ents = append(ents, consensus.Entry{Index: l.Index, Term: l.Term, Data: l.Data})
		if len(l.Extensions) == 8 {
			dones = append(dones, done{binary.BigEndian.Uint64(l.Extensions), l.Index})
		}
	}
	var err error
	if len(ents) > 0 {
		g.smMu.Lock()
		if !g.smClosed && !g.smFailed {
			if err = g.sm.Apply(g.ctx, ents); err != nil {
				g.smFailed = true
			}
		}
		g.smMu.Unlock()
	}
	if n := len(logs); n > 0 {
		g.applied.Store(logs[n-1].Index)
		g.applyWake.notify()
	}
	if err != nil {
		g.fail(err)
	}
	if len(dones) > 0 {
		g.mu.Lock()
		for _, d := range dones {
			if p := g.props[d.tok]; p != nil {
				delete(g.props, d.tok)
				p.index = d.index
				if err != nil {
					p.err = consensus.Errorf(consensus.CodeInternal, "group %d: state machine: %w", g.id, err)
				}
				close(p.done)
			}
		}
		g.mu.Unlock()
	}
	return make([]any, len(logs))
}

// Snapshot takes the state machine's snapshot; Persist completes it with
// the term of its index (see snapshot.go).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	g := (*group)(f)
	g.smMu.Lock()
	defer g.smMu.Unlock()
	if g.smClosed {
		return nil, raft.ErrRaftShutdown
	}
	cs, err := g.sm.Snapshot(g.ctx)
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{s: g.st, cs: cs}, nil
}

// Restore restores the state machine's snapshot and applies the proposals
// after it, up to the library's snapshot index.
func (f *fsm) Restore(rc io.ReadCloser) error {
	g := (*group)(f)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	st, err := decodeStream(b)
	if err != nil {
		return err
	}
	var ents []consensus.Entry
	for _, e := range st.entries {
		if e.Kind == storage.KindNormal {
			ents = append(ents, consensus.Entry{Index: e.Index, Term: e.Term, Data: e.Data})
		}
	}
	g.smMu.Lock()
	defer g.smMu.Unlock()
	if g.smClosed {
		return raft.ErrRaftShutdown
	}
	if err := g.sm.Restore(g.ctx, consensus.Snapshot{Index: st.smIndex, Data: st.smData}); err != nil {
		return err
	}
	if len(ents) > 0 {
		if err := g.sm.Apply(g.ctx, ents); err != nil {
			return err
		}
	}
	g.applied.Store(st.smIndex + uint64(len(st.entries)))
	g.applyWake.notify()
	return nil
}
