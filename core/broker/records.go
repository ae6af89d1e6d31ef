package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/chronik-go/chronik/core/protocol"
)

// Kafka v2 record batch header layout (all big-endian).
const (
	offBaseOffset      = 0  // int64
	offBatchLength     = 8  // int32: bytes after this field
	offLeaderEpoch     = 12 // int32
	offMagic           = 16 // int8
	offCRC             = 17 // uint32, CRC32C of attributes..end
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offBaseTimestamp   = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offNumRecords      = 57 // int32
	batchHeaderLen     = 61
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is what the broker reads from a record batch header.
type batchHeader struct {
	Length          int // whole batch, including the 12 bytes of offset and length
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

func (h batchHeader) compression() int16  { return h.Attributes & 0x7 }
func (h batchHeader) transactional() bool { return h.Attributes&0x10 != 0 }
func (h batchHeader) control() bool       { return h.Attributes&0x20 != 0 }
func (h batchHeader) logAppendTime() bool { return h.Attributes&0x8 != 0 }

// lastSequence is the sequence of the batch's last record (wrapping as Kafka does).
func (h batchHeader) lastSequence() int32 {
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// errBatch is a record batch that fails validation; code is the Kafka error.
type errBatch struct {
	code protocol.ErrorCode
	msg  string
}

func (e *errBatch) Error() string { return e.msg }

func batchErr(code protocol.ErrorCode, format string, args ...any) error {
	return &errBatch{code: code, msg: fmt.Sprintf(format, args...)}
}

// batchErrCode returns the Kafka code of a validation error.
func batchErrCode(err error) protocol.ErrorCode {
	var e *errBatch
	if errors.As(err, &e) {
		return e.code
	}
	return protocol.ErrCorruptMessage
}

// parseBatch reads and checks the header of the record batch at the start
// of b: framing, magic 2, CRC32C. It does not look inside the records.
func parseBatch(b []byte) (batchHeader, error) { return readBatch(b, true) }

// parseLoggedBatch reads the header of a batch taken from the partition
// log: it was checked (CRC included) before it was proposed, and the store
// checksums what it keeps, so the CRC is not computed again.
func parseLoggedBatch(b []byte) (batchHeader, error) { return readBatch(b, false) }

func readBatch(b []byte, checkCRC bool) (batchHeader, error) {
	if len(b) < batchHeaderLen {
		return batchHeader{}, batchErr(protocol.ErrCorruptMessage, "record batch of %d bytes is shorter than its header", len(b))
	}
	if magic := int8(b[offMagic]); magic != 2 {
		return batchHeader{}, batchErr(protocol.ErrUnsupportedForMessageFormat, "record batch magic %d: only magic 2 (Kafka 0.11+) is supported", magic)
	}
	n := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
	if n < batchHeaderLen-12 || n+12 > int64(len(b)) {
		return batchHeader{}, batchErr(protocol.ErrCorruptMessage, "record batch length %d does not fit in %d bytes", n, len(b))
	}
	whole := b[:n+12]
	if checkCRC {
		if got, want := crc32.Checksum(whole[offAttributes:], crc32c), binary.BigEndian.Uint32(whole[offCRC:]); got != want {
			return batchHeader{}, batchErr(protocol.ErrCorruptMessage, "record batch CRC mismatch: computed %08x, header says %08x", got, want)
		}
	}
	h := batchHeader{
		Length:          int(n + 12),
		Attributes:      int16(binary.BigEndian.Uint16(whole[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(whole[offLastOffsetDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(whole[offBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(whole[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(whole[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(whole[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(whole[offBaseSequence:])),
		NumRecords:      int32(binary.BigEndian.Uint32(whole[offNumRecords:])),
	}
	if h.NumRecords <= 0 || h.LastOffsetDelta < 0 || h.LastOffsetDelta+1 < h.NumRecords {
		return batchHeader{}, batchErr(protocol.ErrInvalidRecord, "record batch has %d records and last offset delta %d", h.NumRecords, h.LastOffsetDelta)
	}
	if h.compression() > 4 {
		return batchHeader{}, batchErr(protocol.ErrCorruptMessage, "record batch uses unknown compression codec %d", h.compression())
	}
	return h, nil
}

// setBatchOffsets stamps the base offset and leader epoch into a batch.
// Neither field is covered by the CRC.
func setBatchOffsets(b []byte, baseOffset int64, leaderEpoch int32) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
}

// firstOffsetAtOrAfter returns the offset delta of the first record in an
// uncompressed batch whose timestamp is at or after ts, or -1 if none. For
// a compressed batch it answers 0 when the batch's max timestamp qualifies
// (the batch's first offset; records are not decompressed).
func firstOffsetAtOrAfter(b []byte, h batchHeader, ts int64) int32 {
	if h.MaxTimestamp < ts {
		return -1
	}
	if h.compression() != 0 || h.logAppendTime() {
		return 0
	}
	p := b[batchHeaderLen:h.Length]
	for i := int32(0); i < h.NumRecords; i++ {
		length, n := binary.Varint(p)
		if n <= 0 || length < 0 || int64(len(p)-n) < length {
			return 0
		}
		rec := p[n : n+int(length)]
		p = p[n+int(length):]
		if len(rec) < 1 {
			return 0
		}
		rec = rec[1:] // attributes
		tsDelta, n1 := binary.Varint(rec)
		if n1 <= 0 {
			return 0
		}
		offDelta, n2 := binary.Varint(rec[n1:])
		if n2 <= 0 {
			return 0
		}
		if h.BaseTimestamp+tsDelta >= ts {
			return int32(offDelta)
		}
	}
	return 0
}
