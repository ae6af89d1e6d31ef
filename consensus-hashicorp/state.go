package hashicorp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/raft"
)

// stateMagic starts every group state blob this engine writes ("written by
// hashicorp"), so that a group written by another backend is refused with a
// clear error, and this engine's blobs are refused by the others.
var stateMagic = []byte("HCR1")

// etcdStateMagic starts the state blobs of consensus-etcd.
var etcdStateMagic = []byte("ETR1")

// groupState is what a group keeps in its state blob: the library's
// StableStore keys (CurrentTerm, LastVoteTerm, LastVoteCand) and the latest
// snapshot's record. The snapshot's entries are not copied here: they stay
// in the log (see snapshot.go).
type groupState struct {
	stable map[string][]byte
	snap   *snapRecord // nil: no snapshot
}

// snapRecord describes a persisted snapshot: the library's metadata (the
// index it covers, L) and the state machine's snapshot, which describes a
// possibly lower index S. Entries (S, L] are in the log and replayed after
// the state machine's Restore.
type snapRecord struct {
	version   raft.SnapshotVersion
	index     uint64 // L
	term      uint64
	conf      []byte // raft.EncodeConfiguration
	confIndex uint64
	smIndex   uint64 // S <= L
	smTerm    uint64 // term of entry S
	smData    []byte
}

func (r *snapRecord) id() string { return fmt.Sprintf("%d-%d", r.term, r.index) }

func (r *snapRecord) meta(size int64) *raft.SnapshotMeta {
	return &raft.SnapshotMeta{
		Version:            r.version,
		ID:                 r.id(),
		Index:              r.index,
		Term:               r.term,
		Configuration:      raft.DecodeConfiguration(r.conf),
		ConfigurationIndex: r.confIndex,
		Size:               size,
	}
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// encodeState builds a state blob: magic, the stable keys (sorted), then
// a snapshot flag and record.
func encodeState(s *groupState) []byte {
	b := slices.Clone(stateMagic)
	b = binary.AppendUvarint(b, uint64(len(s.stable)))
	for _, k := range slices.Sorted(maps.Keys(s.stable)) {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, s.stable[k])
	}
	if s.snap == nil {
		return append(b, 0)
	}
	r := s.snap
	b = append(b, 1)
	for _, v := range []uint64{uint64(r.version), r.index, r.term, r.confIndex, r.smIndex, r.smTerm} {
		b = binary.AppendUvarint(b, v)
	}
	b = appendBytes(b, r.conf)
	return appendBytes(b, r.smData)
}

// errOtherBackend explains a blob written by consensus-etcd.
var errOtherBackend = errors.New("the group's state was written by the etcd consensus backend; the hashicorp backend cannot open it (run this data directory with consensus type etcd, or start from an empty one)")

// decodeState reverses encodeState; a nil blob is an empty state.
func decodeState(b []byte) (*groupState, error) {
	s := &groupState{stable: map[string][]byte{}}
	if b == nil {
		return s, nil
	}
	if bytes.HasPrefix(b, etcdStateMagic) {
		return nil, errOtherBackend
	}
	if !bytes.HasPrefix(b, stateMagic) {
		return nil, errors.New("the group's state was not written by the hashicorp consensus backend (unknown format)")
	}
	d := decoder{b: b[len(stateMagic):]}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.bytes()
		s.stable[string(k)] = slices.Clone(d.bytes())
	}
	if d.byte() == 1 {
		r := &snapRecord{}
		r.version = raft.SnapshotVersion(d.uvarint())
		r.index, r.term, r.confIndex = d.uvarint(), d.uvarint(), d.uvarint()
		r.smIndex, r.smTerm = d.uvarint(), d.uvarint()
		r.conf = slices.Clone(d.bytes())
		r.smData = slices.Clone(d.bytes())
		s.snap = r
	}
	if d.err != nil {
		return nil, fmt.Errorf("group state: %w", d.err)
	}
	return s, nil
}

// decoder reads uvarints and length-prefixed byte strings; the first error
// sticks.
type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errTruncated
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
