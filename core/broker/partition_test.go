package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
)

// makeBatch encodes an uncompressed v2 record batch of n records whose
// timestamps are baseTS, baseTS+1, ...
func makeBatch(pid int64, epoch int16, seq int32, n int, baseTS int64) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		var body []byte
		body = append(body, 0) // attributes
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1) // null key
		val := []byte{byte(i)}
		body = binary.AppendVarint(body, int64(len(val)))
		body = append(body, val...)
		body = binary.AppendVarint(body, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := make([]byte, batchHeaderLen, batchHeaderLen+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-12))
	b[offMagic] = 2
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(n-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(baseTS+int64(n)-1))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(n))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

func recordsEntry(index, term uint64, batches ...[]byte) consensus.Entry {
	data := []byte{cmdRecords}
	for _, b := range batches {
		data = append(data, b...)
	}
	return consensus.Entry{Index: index, Term: term, Data: data}
}

func applyOne(t *testing.T, p *partition, e consensus.Entry) applyResult {
	t.Helper()
	if err := p.Apply(context.Background(), []consensus.Entry{e}); err != nil {
		t.Fatal(err)
	}
	r, ok := p.takeResult(e.Index)
	if !ok {
		t.Fatalf("no result for entry %d", e.Index)
	}
	return r
}

func TestParseBatch(t *testing.T) {
	b := makeBatch(-1, -1, -1, 3, 1000)
	h, err := parseBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 3 || h.LastOffsetDelta != 2 || h.Length != len(b) || h.MaxTimestamp != 1002 {
		t.Fatalf("header %+v", h)
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-1] ^= 0xff
	if _, err := parseBatch(bad); batchErrCode(err) != protocol.ErrCorruptMessage {
		t.Fatalf("flipped byte: %v", err)
	}
	old := append([]byte(nil), b...)
	old[offMagic] = 1
	if _, err := parseBatch(old); batchErrCode(err) != protocol.ErrUnsupportedForMessageFormat {
		t.Fatalf("magic 1: %v", err)
	}
	for _, n := range []int{0, 10, batchHeaderLen, len(b) - 1} {
		if _, err := parseBatch(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	if d := firstOffsetAtOrAfter(b, h, 1001); d != 1 {
		t.Fatalf("first offset at ts 1001: delta %d, want 1", d)
	}
	if d := firstOffsetAtOrAfter(b, h, 5000); d != -1 {
		t.Fatalf("ts after the batch: %d, want -1", d)
	}
}

func TestPartitionOffsetsAreGapless(t *testing.T) {
	p := newPartition("t", 0, 1000, 1)
	if r := applyOne(t, p, recordsEntry(2, 1, makeBatch(-1, -1, -1, 3, 0))); r.err != 0 || r.baseOffset != 0 {
		t.Fatalf("first: %+v", r)
	}
	// An epoch marker takes a Raft index, no offset.
	epoch := make([]byte, 9)
	epoch[0] = cmdEpoch
	binary.BigEndian.PutUint64(epoch[1:], 2)
	applyOne(t, p, consensus.Entry{Index: 3, Term: 2, Data: epoch})
	if r := applyOne(t, p, recordsEntry(5, 2, makeBatch(-1, -1, -1, 2, 0), makeBatch(-1, -1, -1, 4, 0))); r.baseOffset != 3 {
		t.Fatalf("second: %+v", r)
	}
	if p.st.nextOffset != 9 {
		t.Fatalf("next offset %d, want 9", p.st.nextOffset)
	}
	got := p.locate(4, 10)
	if len(got) != 2 || got[0].baseOffset != 3 || got[1].baseOffset != 5 || got[1].pos == 0 {
		t.Fatalf("locate(4) = %+v", got)
	}
}

func TestPartitionIdempotence(t *testing.T) {
	p := newPartition("t", 0, 1000, 1)
	const pid = 7
	if r := applyOne(t, p, recordsEntry(1, 1, makeBatch(pid, 0, 0, 5, 0))); r.err != 0 || r.baseOffset != 0 {
		t.Fatalf("seq 0: %+v", r)
	}
	if r := applyOne(t, p, recordsEntry(2, 1, makeBatch(pid, 0, 5, 5, 0))); r.err != 0 || r.baseOffset != 5 {
		t.Fatalf("seq 5: %+v", r)
	}
	// A retry of the first batch (e.g. after a leader change) is answered
	// with its original offset and assigns nothing.
	if r := applyOne(t, p, recordsEntry(3, 2, makeBatch(pid, 0, 0, 5, 0))); r.err != 0 || r.baseOffset != 0 {
		t.Fatalf("retry: %+v", r)
	}
	if p.st.nextOffset != 10 {
		t.Fatalf("retry assigned offsets: next %d", p.st.nextOffset)
	}
	if r := applyOne(t, p, recordsEntry(4, 2, makeBatch(pid, 0, 20, 1, 0))); r.err != protocol.ErrOutOfOrderSequenceNumber {
		t.Fatalf("gap in sequence: %+v", r)
	}
	if r := applyOne(t, p, recordsEntry(5, 2, makeBatch(pid, 1, 0, 1, 0))); r.err != 0 || r.baseOffset != 10 {
		t.Fatalf("new epoch: %+v", r)
	}
	if r := applyOne(t, p, recordsEntry(6, 2, makeBatch(pid, 0, 10, 1, 0))); r.err != protocol.ErrInvalidProducerEpoch {
		t.Fatalf("fenced epoch: %+v", r)
	}
	// Two batches of one producer in one entry.
	if r := applyOne(t, p, recordsEntry(7, 2, makeBatch(pid, 1, 1, 2, 0), makeBatch(pid, 1, 3, 2, 0))); r.err != 0 || r.baseOffset != 11 {
		t.Fatalf("two batches: %+v", r)
	}
}

// TestPartitionSnapshotReplayIsDeterministic checks that a replica restored
// from a snapshot and the rest of the log reaches the same state as one that
// applied everything.
func TestPartitionSnapshotReplayIsDeterministic(t *testing.T) {
	var log []consensus.Entry
	idx := uint64(0)
	add := func(e consensus.Entry) { idx++; e.Index = idx; log = append(log, e) }
	for i := 0; i < 20; i++ {
		add(recordsEntry(0, 1, makeBatch(int64(i%3), 0, int32(i/3*2), 2, int64(i))))
	}
	trunc := make([]byte, 9)
	trunc[0] = cmdTruncate
	binary.BigEndian.PutUint64(trunc[1:], 15)
	add(consensus.Entry{Term: 1, Data: trunc})
	for i := 20; i < 30; i++ {
		add(recordsEntry(0, 1, makeBatch(int64(i%3), 0, int32(i/3*2), 2, int64(i))))
	}

	full := newPartition("t", 0, 1000, 1)
	if err := full.Apply(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	snap, err := full.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Index == 0 || snap.Index >= 21 {
		t.Fatalf("snapshot index %d", snap.Index)
	}
	restored := newPartition("t", 0, 1000, 2)
	if err := restored.Restore(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if err := restored.Apply(context.Background(), log[snap.Index:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full.st, restored.st) {
		t.Fatalf("states differ:\nfull     %+v\nrestored %+v", full.st, restored.st)
	}
	if full.st.startOffset != 15 || full.st.nextOffset != 60 {
		t.Fatalf("start %d next %d", full.st.startOffset, full.st.nextOffset)
	}
}
