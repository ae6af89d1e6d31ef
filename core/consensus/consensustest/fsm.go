package consensustest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/chronik-go/chronik/core/consensus"
)

// record is one applied entry as the test state machine keeps it.
type record struct {
	Index uint64
	Data  []byte
}

// fsm is the test state machine: its state is the sequence of entries
// applied (index and data), which it snapshots whole. It checks the calls it
// gets against the contract and reports breaches to its group's recorder.
type fsm struct {
	rec  *groupRec
	node consensus.NodeID

	busy atomic.Bool // a call is in progress: calls must not overlap

	mu       sync.Mutex
	state    []record
	last     uint64 // index of the last entry applied or restored
	restores int
	applied  int  // entries applied since start
	started  bool // any call seen (Restore must come first)
	closed   bool // the engine was shut down: no more calls allowed
}

func newFSM(rec *groupRec, node consensus.NodeID) *fsm {
	return &fsm{rec: rec, node: node}
}

// enter checks that calls do not overlap and do not come after shutdown.
func (f *fsm) enter(call string) func() {
	if !f.busy.CompareAndSwap(false, true) {
		f.rec.violate("node %d: %s while another state machine call is running", f.node, call)
		return func() {}
	}
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		f.rec.violate("node %d: %s after the engine was shut down", f.node, call)
	}
	return func() { f.busy.Store(false) }
}

func (f *fsm) Apply(_ context.Context, entries []consensus.Entry) error {
	defer f.enter("Apply")()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	for _, e := range entries {
		if e.Index <= f.last {
			f.rec.violate("node %d: Apply index %d after index %d (not increasing)", f.node, e.Index, f.last)
			continue
		}
		f.last = e.Index
		f.state = append(f.state, record{e.Index, bytes.Clone(e.Data)})
		f.applied++
	}
	return nil
}

func (f *fsm) Snapshot(context.Context) (consensus.Snapshot, error) {
	defer f.enter("Snapshot")()
	f.mu.Lock()
	defer f.mu.Unlock()
	return consensus.Snapshot{Index: f.last, Data: encodeState(f.state)}, nil
}

func (f *fsm) Restore(_ context.Context, s consensus.Snapshot) error {
	defer f.enter("Restore")()
	st, err := decodeState(s.Data)
	if err != nil {
		f.rec.violate("node %d: Restore at %d: %v", f.node, s.Index, err)
		return err
	}
	if n := len(st); n > 0 && st[n-1].Index > s.Index {
		f.rec.violate("node %d: Restore: snapshot at %d holds entry %d", f.node, s.Index, st[n-1].Index)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	f.state, f.last = st, s.Index
	f.restores++
	return nil
}

func (f *fsm) LeaderChanged(_ context.Context, leader consensus.NodeID, term uint64) {
	f.rec.observe(f.node, leader, term, "LeaderChanged")
}

// close marks the engine shut down; later calls are breaches.
func (f *fsm) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// snapshot returns a copy of the state (records are never mutated).
func (f *fsm) snapshot() []record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.state)
}

func (f *fsm) restoreCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

// encodeState writes records as (index, length, data) triples.
func encodeState(st []record) []byte {
	var b []byte
	for _, r := range st {
		b = binary.AppendUvarint(b, r.Index)
		b = binary.AppendUvarint(b, uint64(len(r.Data)))
		b = append(b, r.Data...)
	}
	return b
}

func decodeState(b []byte) ([]record, error) {
	var st []record
	for len(b) > 0 {
		idx, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad snapshot: index")
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errors.New("bad snapshot: length")
		}
		b = b[n:]
		st = append(st, record{idx, bytes.Clone(b[:l])})
		b = b[l:]
	}
	return st, nil
}

// groupRec is what the suite records about one group across all nodes and
// restarts: the leader seen for each term, the acknowledged proposals and
// every breach of the contract seen.
type groupRec struct {
	id consensus.GroupID

	mu         sync.Mutex
	leaders    map[uint64]leaderSeen // term -> the one leader seen for it
	acked      map[uint64][]byte     // index -> data of an acknowledged Propose
	violations []string
}

type leaderSeen struct {
	leader consensus.NodeID
	by     consensus.NodeID
	how    string
}

func newGroupRec(id consensus.GroupID) *groupRec {
	return &groupRec{id: id, leaders: map[uint64]leaderSeen{}, acked: map[uint64][]byte{}}
}

func (r *groupRec) violate(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.violations) < 50 {
		r.violations = append(r.violations, fmt.Sprintf("group %d: ", r.id)+fmt.Sprintf(format, args...))
	}
}

// observe records that node by saw leader at term; two leaders for one term
// break election safety.
func (r *groupRec) observe(by, leader consensus.NodeID, term uint64, how string) {
	if leader == 0 {
		return
	}
	r.mu.Lock()
	prev, ok := r.leaders[term]
	if !ok {
		r.leaders[term] = leaderSeen{leader, by, how}
	}
	r.mu.Unlock()
	if ok && prev.leader != leader {
		r.violate("term %d has two leaders: %d (seen by node %d via %s) and %d (seen by node %d via %s)",
			term, prev.leader, prev.by, prev.how, leader, by, how)
	}
}

func (r *groupRec) observeStatus(node consensus.NodeID, st consensus.Status) {
	if st.Role == consensus.RoleLeader {
		if st.Leader != 0 && st.Leader != node {
			r.violate("node %d: Status says leader role but names leader %d (term %d)", node, st.Leader, st.Term)
		}
		r.observe(node, node, st.Term, "Status.Role")
	} else {
		r.observe(node, st.Leader, st.Term, "Status.Leader")
	}
}

// ack records an acknowledged proposal.
func (r *groupRec) ack(index uint64, data []byte) {
	r.mu.Lock()
	prev, dup := r.acked[index]
	if !dup {
		r.acked[index] = bytes.Clone(data)
	}
	r.mu.Unlock()
	if dup {
		r.violate("index %d acknowledged twice: %q and %q", index, prev, data)
	}
}

func (r *groupRec) ackedCopy() map[uint64][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[uint64][]byte, len(r.acked))
	for k, v := range r.acked {
		m[k] = v
	}
	return m
}

func (r *groupRec) takeViolations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.violations
	r.violations = nil
	return v
}
