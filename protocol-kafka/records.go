package kafka

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/chronik-go/chronik/core/protocol"
)

// Offsets in a v2 record batch header (Kafka's DefaultRecordBatch).
const (
	batchLengthOffset  = 8  // int32: bytes after this field
	batchMagicOffset   = 16 // int8; also the magic's place in v0/v1 message sets
	batchCRCOffset     = 17 // uint32: CRC32C of attributes..end
	batchAttrsOffset   = 21
	batchCountOffset   = 57 // int32: number of records
	batchHeaderBytes   = 61
	batchLogOverhead   = 12 // base offset and length precede the length's span
	currentRecordMagic = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// validateRecords checks the framing of a produce partition's records: one
// or more whole v2 batches, each with a consistent length, magic 2, a
// correct CRC32C and at least one record. Only framing is checked here; the
// broker checks sizes against topic configs, sequences and the rest. It
// returns the Kafka error and a message for the response.
func validateRecords(b []byte) (protocol.ErrorCode, string) {
	if len(b) == 0 {
		return protocol.ErrCorruptMessage, "produce request has no record batch for the partition"
	}
	for len(b) > 0 {
		if len(b) > batchMagicOffset {
			if magic := int8(b[batchMagicOffset]); magic < currentRecordMagic && magic >= 0 {
				return protocol.ErrUnsupportedForMessageFormat, "record batches must use magic 2 (message format v0/v1 is not supported)"
			}
		}
		if len(b) < batchHeaderBytes {
			return protocol.ErrCorruptMessage, "truncated record batch header"
		}
		n := int64(int32(binary.BigEndian.Uint32(b[batchLengthOffset:]))) + batchLogOverhead
		if n < batchHeaderBytes || n > int64(len(b)) {
			return protocol.ErrCorruptMessage, "record batch length does not match the records' size"
		}
		batch := b[:n]
		if batch[batchMagicOffset] != currentRecordMagic {
			return protocol.ErrCorruptMessage, "unknown record batch magic"
		}
		if crc32.Checksum(batch[batchAttrsOffset:], castagnoli) != binary.BigEndian.Uint32(batch[batchCRCOffset:]) {
			return protocol.ErrCorruptMessage, "record batch CRC mismatch"
		}
		if int32(binary.BigEndian.Uint32(batch[batchCountOffset:])) <= 0 {
			return protocol.ErrCorruptMessage, "record batch has no records"
		}
		b = b[n:]
	}
	return protocol.ErrNone, ""
}
