package hashicorp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// Snapshots
//
// hashicorp/raft assumes that a snapshot covers everything up to the index
// the FSM last applied (L). A Chronik state machine's snapshot may describe
// a lower index S (a partition's snapshot names its log start; the entries
// after it stay in the log). So a snapshot here is the state machine's
// snapshot at S plus the entries (S, L]:
//
//   - kept locally, in the group's state blob, as a record: the library's
//     metadata and the state machine's snapshot, without the entries, which
//     are in the log (Compact drops the log only below S+1);
//   - opened (to send it to a follower, or to restore at start), as a
//     stream: the state machine's snapshot, then the entries (S, L] read
//     from the log;
//   - received from a leader, as that stream: if the local log already
//     holds entry L with term L's term (and everything after S), only the
//     record is written; otherwise the log is reset to S and the entries
//     (S, L] are written with the record, in one storage write;
//   - restored into the state machine: Restore with the snapshot at S,
//     then Apply with the proposals among (S, L].

// streamMagic starts a snapshot stream.
var streamMagic = []byte("HCS1")

// snapStream is a decoded snapshot stream.
type snapStream struct {
	smIndex, smTerm uint64
	smData          []byte
	entries         []storage.Entry // (smIndex, smIndex+len]
}

func encodeStream(s *snapStream) []byte {
	n := len(streamMagic) + len(s.smData) + 32
	for _, e := range s.entries {
		n += len(e.Data) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, streamMagic...)
	b = binary.AppendUvarint(b, s.smIndex)
	b = binary.AppendUvarint(b, s.smTerm)
	b = appendBytes(b, s.smData)
	b = binary.AppendUvarint(b, uint64(len(s.entries)))
	for _, e := range s.entries {
		b = binary.AppendUvarint(b, e.Term)
		b = append(b, byte(e.Kind))
		b = appendBytes(b, e.Data)
	}
	return b
}

func decodeStream(b []byte) (*snapStream, error) {
	if !bytes.HasPrefix(b, streamMagic) {
		return nil, errors.New("hashicorp: not a snapshot of this engine")
	}
	d := decoder{b: b[len(streamMagic):]}
	s := &snapStream{smIndex: d.uvarint(), smTerm: d.uvarint(), smData: d.bytes()}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errTruncated
	}
	if d.err == nil {
		s.entries = make([]storage.Entry, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		e := storage.Entry{Index: s.smIndex + 1 + i, Term: d.uvarint(), Kind: storage.Kind(d.byte())}
		e.Data = d.bytes()
		s.entries = append(s.entries, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("hashicorp: snapshot stream: %w", d.err)
	}
	return s, nil
}

// snapshotStore is the library's SnapshotStore over the group's state blob
// and log. It keeps only the latest snapshot.
type snapshotStore store

var _ raft.SnapshotStore = (*snapshotStore)(nil)

func (ss *snapshotStore) s() *store { return (*store)(ss) }

// Create starts a snapshot; the sink keeps it in memory until Close.
func (ss *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration,
	confIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	return &sink{s: ss.s(), rec: snapRecord{
		version: version, index: index, term: term,
		conf: raft.EncodeConfiguration(conf), confIndex: confIndex,
	}}, nil
}

// List returns the latest snapshot, if any. Its Size is 0: Open tells it.
func (ss *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	s := ss.s()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.snap == nil {
		return nil, nil
	}
	return []*raft.SnapshotMeta{s.state.snap.meta(0)}, nil
}

// Open returns the stream of snapshot id: the state machine's snapshot and
// the entries after it up to the snapshot's index, read from the log.
func (ss *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s := ss.s()
	s.mu.Lock()
	rec := s.state.snap
	s.mu.Unlock()
	if rec == nil || rec.id() != id {
		return nil, nil, fmt.Errorf("hashicorp: group %d: no snapshot %s", s.group, id)
	}
	st := &snapStream{smIndex: rec.smIndex, smTerm: rec.smTerm, smData: rec.smData}
	for lo := rec.smIndex + 1; lo <= rec.index; {
		es, err := s.log.Entries(lo, rec.index+1, 16<<20)
		if err != nil {
			return nil, nil, fmt.Errorf("hashicorp: group %d: snapshot %s: entries from %d: %w", s.group, id, lo, err)
		}
		st.entries = append(st.entries, es...)
		lo += uint64(len(es))
	}
	b := encodeStream(st)
	return rec.meta(int64(len(b))), io.NopCloser(bytes.NewReader(b)), nil
}

// sink collects a snapshot stream: written by our FSM snapshot (the state
// machine's snapshot, no entries) or copied from a leader's (with entries).
type sink struct {
	s      *store
	rec    snapRecord
	buf    bytes.Buffer
	closed bool
}

func (k *sink) Write(p []byte) (int, error) { return k.buf.Write(p) }
func (k *sink) ID() string                  { return k.rec.id() }
func (k *sink) Cancel() error               { k.buf.Reset(); return nil }

// Close persists the snapshot (see the comment at the top of this file).
func (k *sink) Close() error {
	if k.closed { // Persist closes the sink, and the library again
		return nil
	}
	k.closed = true
	s := k.s
	st, err := decodeStream(k.buf.Bytes())
	if err != nil {
		return err
	}
	rec := k.rec
	if st.smIndex > rec.index {
		return fmt.Errorf("hashicorp: group %d: state machine snapshot at %d is past the snapshot index %d", s.group, st.smIndex, rec.index)
	}
	rec.smIndex, rec.smTerm, rec.smData = st.smIndex, st.smTerm, slices.Clone(st.smData)

	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.state.snap
	s.state.snap = &rec
	var gw storage.GroupWrite
	if !s.holds(rec.smIndex, rec.index, rec.term) {
		if uint64(len(st.entries)) != rec.index-rec.smIndex {
			s.state.snap = prev
			return fmt.Errorf("hashicorp: group %d: snapshot at %d does not match the log and carries %d of its %d entries",
				s.group, rec.index, len(st.entries), rec.index-rec.smIndex)
		}
		gw.Reset = &storage.Position{Index: rec.smIndex, Term: rec.smTerm}
		gw.Entries = st.entries
		s.tail = 0
	}
	if err := s.writeLocked(gw); err != nil {
		s.state.snap = prev
		return err
	}
	return nil
}

// holds reports whether the log holds entry index with term and every entry
// after from (so the snapshot's entries need not be written).
func (s *store) holds(from, index, term uint64) bool {
	first, err := s.log.FirstIndex()
	if err != nil || first > from+1 {
		return false
	}
	if s.tail > 0 && index > s.tail {
		return false
	}
	t, err := s.log.Term(index)
	return err == nil && t == term
}

// fsmSnapshot is the state machine's snapshot, taken in the FSM goroutine
// and persisted by the library's snapshot goroutine.
type fsmSnapshot struct {
	s  *store
	cs consensus.Snapshot
}

func (f *fsmSnapshot) Persist(sk raft.SnapshotSink) error {
	var term uint64
	if f.cs.Index > 0 {
		t, err := f.s.log.Term(f.cs.Index)
		if err != nil {
			_ = sk.Cancel()
			return fmt.Errorf("hashicorp: group %d: term of snapshot index %d: %w", f.s.group, f.cs.Index, err)
		}
		term = t
	}
	b := encodeStream(&snapStream{smIndex: f.cs.Index, smTerm: term, smData: f.cs.Data})
	if _, err := sk.Write(b); err != nil {
		_ = sk.Cancel()
		return err
	}
	return sk.Close()
}

func (f *fsmSnapshot) Release() {}
