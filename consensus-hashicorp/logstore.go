package hashicorp

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/storage"
)

// store is one group's view of the shared storage.Store: the library's
// LogStore (over the group's storage.Log) and StableStore (over its state
// blob), and the home of its snapshot (see snapshotStore).
//
// Entries map to storage kinds as follows. A LogCommand (a proposal) is a
// storage.KindNormal entry whose Data is the proposal verbatim: the broker
// reads the partition log straight from storage. A LogNoop is a
// storage.KindNoop entry with no data. A LogConfiguration is a
// storage.KindConfChange entry holding the library's encoded
// configuration. Any other type (LogBarrier) is a KindNoop entry whose Data
// is the type byte followed by the entry's data. Extensions and AppendedAt
// are not stored.
type store struct {
	group storage.GroupID
	log   storage.Log
	w     *writer

	// mu guards the state blob: every change is encoded and written under
	// it, so writes of the blob reach the store in the order they were made.
	mu    sync.Mutex
	state *groupState
	tail  uint64 // after a suffix DeleteRange: the logical last index until the next StoreLogs (0: none)
	// onTerm is called (under mu, in the caller's goroutine) when the
	// library persists a new current term.
	onTerm func(term uint64)

	// ra are the last runs of entries read ahead by GetLog (see there).
	raMu  sync.Mutex
	ra    [readAheadRuns][]storage.Entry
	raAt  int    // the next run to replace
	raGen uint64 // counts dropReadAhead: a read that overlaps one is not kept
}

// GetLog reads ahead: the library reads the log one entry at a time (a
// leader sending entries to a follower, a follower checking the entry
// before an append), and through a store in another process (the engine
// run as a plugin) each of those reads would be a round trip. One read
// brings the next readAheadEntries (at most readAheadBytes); a few runs
// are kept, as a leader reads for each follower from a different place.
const (
	readAheadEntries = 64
	readAheadBytes   = 1 << 20
	readAheadRuns    = 4
)

var (
	_ raft.LogStore          = (*store)(nil)
	_ raft.MonotonicLogStore = (*store)(nil)
	_ raft.StableStore       = (*store)(nil)
)

// IsMonotonic tells the library that the log has no gaps: after installing
// a snapshot it asks to delete the whole log rather than leaving a gap.
func (s *store) IsMonotonic() bool { return true }

// bounds returns the log's first and last index, with the pending suffix
// deletion applied; ok is false when the log holds no entry.
func (s *store) bounds() (first, last uint64, ok bool, err error) {
	first, err = s.log.FirstIndex()
	if err != nil {
		return 0, 0, false, err
	}
	last, err = s.log.LastIndex()
	if err != nil {
		return 0, 0, false, err
	}
	s.mu.Lock()
	if s.tail > 0 && s.tail < last {
		last = s.tail
	}
	s.mu.Unlock()
	return first, last, last >= first, nil
}

// FirstIndex is the first index held, 0 if none.
func (s *store) FirstIndex() (uint64, error) {
	first, _, ok, err := s.bounds()
	if err != nil || !ok {
		return 0, err
	}
	return first, nil
}

// LastIndex is the last index held, 0 if none.
func (s *store) LastIndex() (uint64, error) {
	_, last, ok, err := s.bounds()
	if err != nil || !ok {
		return 0, err
	}
	return last, nil
}

// GetLog reads entry i; raft.ErrLogNotFound outside the log (the library
// then sends a snapshot).
func (s *store) GetLog(i uint64, out *raft.Log) error {
	s.mu.Lock()
	tail := s.tail
	s.mu.Unlock()
	if tail > 0 && i > tail {
		return raft.ErrLogNotFound
	}
	first, err := s.log.FirstIndex()
	if err != nil {
		return err
	}
	if i < first {
		return raft.ErrLogNotFound
	}
	if e, ok := s.readAhead(i); ok {
		return toRaft(&e, out)
	}
	last, err := s.log.LastIndex()
	if err != nil {
		return err
	}
	if tail > 0 {
		last = min(last, tail)
	}
	hi := min(i+readAheadEntries, last+1)
	if hi <= i {
		return raft.ErrLogNotFound
	}
	s.raMu.Lock()
	gen := s.raGen
	s.raMu.Unlock()
	es, err := s.log.Entries(i, hi, readAheadBytes)
	switch storage.CodeOf(err) {
	case storage.CodeOK:
	case storage.CodeCompacted, storage.CodeUnavailable:
		return raft.ErrLogNotFound
	default:
		return err
	}
	if len(es) == 0 || es[0].Index != i {
		return raft.ErrLogNotFound
	}
	s.raMu.Lock()
	if s.raGen == gen { // no part of the log was replaced meanwhile
		s.ra[s.raAt] = es
		s.raAt = (s.raAt + 1) % readAheadRuns
	}
	s.raMu.Unlock()
	return toRaft(&es[0], out)
}

// readAhead returns entry i from the runs read ahead.
func (s *store) readAhead(i uint64) (storage.Entry, bool) {
	s.raMu.Lock()
	defer s.raMu.Unlock()
	for _, run := range s.ra {
		if len(run) > 0 && i >= run[0].Index && i < run[0].Index+uint64(len(run)) {
			return run[i-run[0].Index], true
		}
	}
	return storage.Entry{}, false
}

// dropReadAhead forgets the runs read ahead from index i on: the log is
// replaced from there. It is called before and after the replacing write,
// so that no read made in between is kept.
func (s *store) dropReadAhead(i uint64) {
	s.raMu.Lock()
	defer s.raMu.Unlock()
	s.raGen++
	for k, run := range s.ra {
		if len(run) > 0 && run[0].Index+uint64(len(run)) > i {
			if i <= run[0].Index {
				s.ra[k] = nil
			} else {
				s.ra[k] = run[:i-run[0].Index]
			}
		}
	}
}

// StoreLog stores one entry.
func (s *store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends entries (replacing the suffix from the first one) and
// returns once they are durable.
func (s *store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	es := make([]storage.Entry, len(logs))
	for i, l := range logs {
		e, err := fromRaft(l)
		if err != nil {
			return err
		}
		es[i] = e
	}
	s.dropReadAhead(es[0].Index)
	defer s.dropReadAhead(es[0].Index)
	if err := s.w.write(storage.GroupWrite{Group: s.group, Entries: es}); err != nil {
		return fmt.Errorf("hashicorp: group %d: store entries %d-%d: %w", s.group, es[0].Index, es[len(es)-1].Index, err)
	}
	s.mu.Lock()
	s.tail = 0
	s.mu.Unlock()
	return nil
}

// DeleteRange is how the library drops entries. It never drops entries at
// or below the latest snapshot's index (a snapshot install or compaction:
// the log prefix is dropped only by Compact, up to the state machine's
// snapshot index, when the host decides). A suffix above the snapshot (a
// follower's conflicting entries) is hidden at once and replaced by the
// library's next StoreLogs, which starts where it begins.
func (s *store) DeleteRange(lo, hi uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var snapIndex uint64
	if s.state.snap != nil {
		snapIndex = s.state.snap.index
	}
	if lo <= snapIndex {
		return nil
	}
	last, err := s.log.LastIndex()
	if err != nil {
		return err
	}
	if hi >= last || (s.tail > 0 && hi >= s.tail) {
		s.tail = lo - 1
		s.dropReadAhead(lo)
	}
	return nil
}

// Set persists one StableStore key with the rest of the state blob. Of
// the library's keys, only the vote waits for an fsync:
//
//   - LastVoteTerm is kept in memory only: the library sets it only in
//     persistVote, immediately followed by LastVoteCand, whose synced write
//     carries both (a crash between them loses a vote not yet granted).
//   - CurrentTerm is written at once but not synced (Store.Write without
//     sync), so it reaches the store before any later write of the group
//     and a later synced Write covers it. Every durable
//     effect of a term (a vote, an appended entry) is a later synced write
//     of the same blob or log, so it makes the term durable first; what a
//     crash can lose is a term whose only effects were answers (a refused
//     vote, a heartbeat's answer), as if the message had been lost. Votes
//     stay unique per term because the vote keys are durable before a vote
//     is granted, and the blob they are in holds a term at least as high.
//
// This takes an election from three fsyncs in a row on the candidate and
// on each voter to one.
func (s *store) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.stable[string(key)] = append([]byte(nil), val...)
	switch string(key) {
	case string(keyLastVoteTerm):
	case string(keyCurrentTerm):
		// Written here, under mu, so it reaches the store before any
		// later write of the blob; not synced (see above).
		gw := storage.GroupWrite{Group: s.group, State: encodeState(s.state)}
		if err := s.w.store.Write(context.Background(), []storage.GroupWrite{gw}, false); err != nil {
			return fmt.Errorf("hashicorp: group %d: write term: %w", s.group, err)
		}
	default:
		if err := s.writeStateLocked(); err != nil {
			return err
		}
	}
	if string(key) == string(keyCurrentTerm) && len(val) == 8 && s.onTerm != nil {
		s.onTerm(binary.BigEndian.Uint64(val))
	}
	return nil
}

// The library's StableStore keys for the current term and the term of the
// last vote.
var (
	keyCurrentTerm  = []byte("CurrentTerm")
	keyLastVoteTerm = []byte("LastVoteTerm")
)

// Get returns the value of key, empty if it was never set.
func (s *store) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.state.stable[string(key)]...), nil
}

// SetUint64 is Set of an 8-byte big-endian value.
func (s *store) SetUint64(key []byte, v uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, v))
}

// GetUint64 is Get of an 8-byte big-endian value, 0 if never set.
func (s *store) GetUint64(key []byte) (uint64, error) {
	v, _ := s.Get(key)
	if len(v) != 8 {
		return 0, nil
	}
	return binary.BigEndian.Uint64(v), nil
}

// writeStateLocked writes the state blob alone, synced.
func (s *store) writeStateLocked() error {
	return s.writeLocked(storage.GroupWrite{Group: s.group})
}

// writeLocked writes gw with the current state blob, synced.
func (s *store) writeLocked(gw storage.GroupWrite) error {
	gw.Group, gw.State = s.group, encodeState(s.state)
	if err := s.w.write(gw); err != nil {
		return fmt.Errorf("hashicorp: group %d: write state: %w", s.group, err)
	}
	return nil
}

// toRaft converts a stored entry (see store for the mapping).
func toRaft(e *storage.Entry, out *raft.Log) error {
	*out = raft.Log{Index: e.Index, Term: e.Term}
	switch e.Kind {
	case storage.KindNormal:
		out.Type, out.Data = raft.LogCommand, e.Data
	case storage.KindConfChange:
		out.Type, out.Data = raft.LogConfiguration, e.Data
	case storage.KindNoop:
		out.Type = raft.LogNoop
		if len(e.Data) > 0 {
			out.Type, out.Data = raft.LogType(e.Data[0]), e.Data[1:]
		}
	default:
		return fmt.Errorf("hashicorp: entry %d has kind %d, not written by this engine", e.Index, e.Kind)
	}
	return nil
}

// fromRaft converts a library entry to its stored form. Data is shared.
func fromRaft(l *raft.Log) (storage.Entry, error) {
	e := storage.Entry{Index: l.Index, Term: l.Term}
	switch l.Type {
	case raft.LogCommand:
		e.Kind, e.Data = storage.KindNormal, l.Data
	case raft.LogConfiguration:
		e.Kind, e.Data = storage.KindConfChange, l.Data
	case raft.LogNoop:
		e.Kind = storage.KindNoop
		if len(l.Data) > 0 {
			e.Data = append([]byte{byte(raft.LogNoop)}, l.Data...)
		}
	case raft.LogBarrier:
		e.Kind, e.Data = storage.KindNoop, append([]byte{byte(l.Type)}, l.Data...)
	default:
		return e, fmt.Errorf("hashicorp: entry %d: log type %v is not supported", l.Index, l.Type)
	}
	return e, nil
}
