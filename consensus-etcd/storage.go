package etcd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/chronik-go/chronik/core/storage"
)

// stateMagic starts every state blob this engine writes, so that a group
// written by another backend is refused with a clear error.
var stateMagic = []byte("ETR1")

// hashicorpStateMagic starts the state blobs of consensus-hashicorp.
var hashicorpStateMagic = []byte("HCR1")

// encodeState builds a group's state blob: magic, then the HardState and the
// latest snapshot (metadata and data), each length-prefixed protobuf.
func encodeState(hs *pb.HardState, snap []byte) ([]byte, error) {
	h, err := proto.Marshal(hs)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(stateMagic)+2*binary.MaxVarintLen64+len(h)+len(snap))
	b = append(b, stateMagic...)
	b = binary.AppendUvarint(b, uint64(len(h)))
	b = append(b, h...)
	b = binary.AppendUvarint(b, uint64(len(snap)))
	return append(b, snap...), nil
}

// decodeState reverses encodeState; a nil blob is an empty state.
func decodeState(b []byte) (*pb.HardState, *pb.Snapshot, error) {
	hs, snap := &pb.HardState{}, emptySnapshot()
	if b == nil {
		return hs, snap, nil
	}
	if bytes.HasPrefix(b, hashicorpStateMagic) {
		return nil, nil, errors.New("the group's state was written by the hashicorp consensus backend; the etcd backend cannot open it (run this data directory with consensus type hashicorp, or start from an empty one)")
	}
	if !bytes.HasPrefix(b, stateMagic) {
		return nil, nil, fmt.Errorf("group state was not written by the etcd raft engine (another consensus backend?)")
	}
	b = b[len(stateMagic):]
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("truncated group state")
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	h, err := next()
	if err != nil {
		return nil, nil, err
	}
	s, err := next()
	if err != nil {
		return nil, nil, err
	}
	if err := proto.Unmarshal(h, hs); err != nil {
		return nil, nil, fmt.Errorf("group hard state: %w", err)
	}
	if err := proto.Unmarshal(s, snap); err != nil {
		return nil, nil, fmt.Errorf("group snapshot: %w", err)
	}
	if snap.Metadata == nil {
		snap.Metadata = &pb.SnapshotMetadata{}
	}
	if snap.Metadata.ConfState == nil {
		snap.Metadata.ConfState = &pb.ConfState{}
	}
	return hs, snap, nil
}

func emptySnapshot() *pb.Snapshot {
	return &pb.Snapshot{Metadata: &pb.SnapshotMetadata{ConfState: &pb.ConfState{}}}
}

// raftStorage is raft.Storage over one group's storage.Log, the only copy
// of the log. It is used only by the worker holding the group.
type raftStorage struct {
	log   storage.Log
	hs    *pb.HardState // as loaded at start; raft keeps the live one
	snap  *pb.Snapshot  // the latest persisted snapshot
	snapB []byte        // snap, marshalled
}

var _ raft.Storage = (*raftStorage)(nil)

func (s *raftStorage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return s.hs, s.snap.GetMetadata().GetConfState(), nil
}

func (s *raftStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	ents, err := s.log.Entries(lo, hi, maxSize)
	if err != nil {
		return nil, raftErr(err)
	}
	out := make([]*pb.Entry, len(ents))
	for i := range ents {
		out[i] = toRaft(&ents[i])
	}
	return out, nil
}

func (s *raftStorage) Term(i uint64) (uint64, error) {
	if m := s.snap.GetMetadata(); i == m.GetIndex() && i > 0 {
		return m.GetTerm(), nil
	}
	t, err := s.log.Term(i)
	return t, raftErr(err)
}

func (s *raftStorage) LastIndex() (uint64, error) {
	i, err := s.log.LastIndex()
	return i, raftErr(err)
}

func (s *raftStorage) FirstIndex() (uint64, error) {
	i, err := s.log.FirstIndex()
	return i, raftErr(err)
}

func (s *raftStorage) Snapshot() (*pb.Snapshot, error) {
	if s.snap.GetMetadata().GetIndex() == 0 {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return s.snap, nil
}

// setSnapshot records a persisted snapshot.
func (s *raftStorage) setSnapshot(snap *pb.Snapshot, b []byte) {
	s.snap, s.snapB = snap, b
}

// raftErr maps storage codes to the errors raft branches on.
func raftErr(err error) error {
	switch storage.CodeOf(err) {
	case storage.CodeOK:
		return nil
	case storage.CodeCompacted:
		return raft.ErrCompacted
	case storage.CodeUnavailable:
		return raft.ErrUnavailable
	}
	return err
}

// toRaft converts a stored entry to raft's form. Data is shared, never
// mutated.
func toRaft(e *storage.Entry) *pb.Entry {
	t := pb.EntryNormal
	switch e.Kind {
	case storage.KindConfChange:
		t = pb.EntryConfChange
	case storage.KindConfChangeV2:
		t = pb.EntryConfChangeV2
	}
	return &pb.Entry{Index: new(e.Index), Term: new(e.Term), Type: t.Enum(), Data: e.Data}
}

// fromRaft converts a raft entry to its stored form: a leader's empty entry
// is KindNoop, a proposal KindNormal with its data verbatim.
func fromRaft(e *pb.Entry) storage.Entry {
	k := storage.KindNormal
	switch e.GetType() {
	case pb.EntryConfChange:
		k = storage.KindConfChange
	case pb.EntryConfChangeV2:
		k = storage.KindConfChangeV2
	default:
		if len(e.GetData()) == 0 {
			k = storage.KindNoop
		}
	}
	return storage.Entry{Index: e.GetIndex(), Term: e.GetTerm(), Kind: k, Data: e.GetData()}
}
