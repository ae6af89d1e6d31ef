package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/chronik-go/chronik/core/storage"
)

// A segment file is a sequence of records, each starting at a multiple of
// recordAlign. A record is a fixed header followed by a body:
//
//	off  size
//	0    4    body length
//	4    4    CRC32C of the body
//	8    8    segment sequence number the record was written for
//	16   8    sync point: the offset in this segment known durable when the
//	          record was written
//	24   1    record type
//	25   3    zero
//	28   4    CRC32C of bytes 0..28
//
// The sequence number tells a record of this segment from a stale one left
// in a recycled file; the two CRCs let the header be finished (sequence and
// sync point) under the write lock while the body's CRC is computed by the
// caller beforehand. An all-zero header is the clean end of the data.
const (
	headerSize  = 32
	recordAlign = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// recType says what a record's body holds.
type recType uint8

const (
	recBatch      recType = 1 // GroupWrites, applied whole or not at all
	recDrop       recType = 2 // one group dropped
	recCheckpoint recType = 3 // every group's bounds and state: older segments are gone
	recSeal       recType = 4 // the segment ends here; body: next segment's sequence (0: any)
	recRelocate   recType = 5 // live entries moved here from an old segment; body as a batch
)

// header is a decoded record header.
type header struct {
	bodyLen   uint32
	bodyCRC   uint32
	seq       uint64
	syncPoint uint64
	typ       recType
}

// recordSize is the space a record with a body of n bytes takes.
func recordSize(n int) int64 { return align(int64(headerSize + n)) }

func align(n int64) int64 { return (n + recordAlign - 1) &^ (recordAlign - 1) }

// putHeader fills b[:headerSize].
func putHeader(b []byte, h header) {
	binary.LittleEndian.PutUint32(b[0:], h.bodyLen)
	binary.LittleEndian.PutUint32(b[4:], h.bodyCRC)
	binary.LittleEndian.PutUint64(b[8:], h.seq)
	binary.LittleEndian.PutUint64(b[16:], h.syncPoint)
	b[24], b[25], b[26], b[27] = byte(h.typ), 0, 0, 0
	binary.LittleEndian.PutUint32(b[28:], crc(b[:28]))
}

// headerState classifies the bytes where a header is expected.
type headerState int

const (
	hdrValid   headerState = iota // checksum good
	hdrZero                       // all zero: nothing was written here
	hdrGarbage                    // anything else: torn or corrupt
)

// parseHeader decodes b[:headerSize].
func parseHeader(b []byte) (header, headerState) {
	if len(b) < headerSize {
		return header{}, hdrGarbage
	}
	b = b[:headerSize]
	if allZero(b) {
		return header{}, hdrZero
	}
	if binary.LittleEndian.Uint32(b[28:]) != crc(b[:28]) || b[25]|b[26]|b[27] != 0 {
		return header{}, hdrGarbage
	}
	return header{
		bodyLen:   binary.LittleEndian.Uint32(b[0:]),
		bodyCRC:   binary.LittleEndian.Uint32(b[4:]),
		seq:       binary.LittleEndian.Uint64(b[8:]),
		syncPoint: binary.LittleEndian.Uint64(b[16:]),
		typ:       recType(b[24]),
	}, hdrValid
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// A batch body is a sequence of GroupWrites:
//
//	uvarint count
//	per GroupWrite:
//	  uvarint group
//	  byte    flags (flagReset, flagEntries, flagState)
//	  reset:   uvarint index, uvarint term
//	  entries: uvarint n, uvarint first index,
//	           per entry: uvarint term, byte kind, uint32 CRC32C of data,
//	                      uvarint len, data
//	  state:   uvarint len, bytes
//	  uvarint truncBefore
//
// A drop body is uvarint group. A checkpoint body is uvarint count and per
// group: uvarint group, uvarint first, uvarint last, uvarint prevTerm,
// byte hasState, [uvarint len, bytes].
const (
	flagReset   = 1
	flagEntries = 2
	flagState   = 4
)

// gwSize bounds the encoded size of w.
func gwSize(w *storage.GroupWrite) int {
	n := 3*binary.MaxVarintLen64 + 1 + 2*binary.MaxVarintLen64
	for i := range w.Entries {
		n += binary.MaxVarintLen64*2 + 5 + len(w.Entries[i].Data)
	}
	n += binary.MaxVarintLen64 + len(w.State)
	return n
}

// splice is an entry's data, which the encoder does not copy: it goes to
// disk (pwritev) after the metadata byte at, from the caller's buffer.
type splice struct {
	at   int
	data []byte
}

// appendGW appends the metadata of w to b and, for each entry, a splice
// for its data. A batch body on disk is the metadata with every splice's
// data inserted at its place; the body CRC covers the metadata only (each
// entry carries the CRC of its data), so data is checksummed once.
func appendGW(b []byte, w *storage.GroupWrite, sp []splice) ([]byte, []splice) {
	b = binary.AppendUvarint(b, uint64(w.Group))
	var flags byte
	if w.Reset != nil {
		flags |= flagReset
	}
	if len(w.Entries) > 0 {
		flags |= flagEntries
	}
	if w.State != nil {
		flags |= flagState
	}
	b = append(b, flags)
	if w.Reset != nil {
		b = binary.AppendUvarint(b, w.Reset.Index)
		b = binary.AppendUvarint(b, w.Reset.Term)
	}
	if len(w.Entries) > 0 {
		b = binary.AppendUvarint(b, uint64(len(w.Entries)))
		b = binary.AppendUvarint(b, w.Entries[0].Index)
		for i := range w.Entries {
			e := &w.Entries[i]
			b = binary.AppendUvarint(b, e.Term)
			b = append(b, byte(e.Kind))
			b = binary.LittleEndian.AppendUint32(b, crc(e.Data))
			b = binary.AppendUvarint(b, uint64(len(e.Data)))
			sp = append(sp, splice{len(b), e.Data})
		}
	}
	if w.State != nil {
		b = binary.AppendUvarint(b, uint64(len(w.State)))
		b = append(b, w.State...)
	}
	return binary.AppendUvarint(b, w.TruncBefore), sp
}

// flatten returns meta with the splices inserted (meta[base:] is the part
// the splices' positions refer to, from base).
func flatten(meta []byte, sp []splice) []byte {
	out := make([]byte, 0, len(meta))
	cur := 0
	for _, x := range sp {
		out = append(out, meta[cur:x.at]...)
		out = append(out, x.data...)
		cur = x.at
	}
	return append(out, meta[cur:]...)
}

// bodyValid checks a body against its header CRC: for batch and relocate
// records the CRC of the metadata (the body without entry data) and each
// entry's own CRC; for the others the CRC of the whole body.
func bodyValid(t recType, body []byte, want uint32) bool {
	if t != recBatch && t != recRelocate {
		return crc(body) == want
	}
	gws, err := decodeBatch(body)
	if err != nil {
		return false
	}
	var c uint32
	prev := 0
	for _, w := range gws {
		for _, e := range w.entries {
			c = crc32.Update(c, castagnoli, body[prev:e.off])
			if crc(body[e.off:e.off+e.n]) != e.crc {
				return false
			}
			prev = e.off + e.n
		}
	}
	return crc32.Update(c, castagnoli, body[prev:]) == want
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// errShort and friends are decoding failures; a body that passed its CRC
// and still fails to decode is corrupt (or written by a bug).
var errBadBody = errors.New("malformed record body")

// decoder reads a body.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errBadBody
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.err = errBadBody
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.b)-d.off < 4 {
		d.err = errBadBody
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

// bytes returns the offset in the body of the next n bytes and skips them.
func (d *decoder) bytes(n uint64) int {
	if d.err != nil || n > uint64(len(d.b)-d.off) {
		d.err = errBadBody
		return 0
	}
	off := d.off
	d.off += int(n)
	return off
}

// decEntry is an entry of a decoded body: its data is body[off:off+n].
type decEntry struct {
	index, term uint64
	kind        storage.Kind
	crc         uint32
	off, n      int
}

// decGW is a decoded GroupWrite.
type decGW struct {
	group       storage.GroupID
	reset       *storage.Position
	entries     []decEntry
	state       []byte // nil: unchanged; aliases the body
	truncBefore uint64
}

// decodeBatch decodes a batch body. Entry data stays in body (see decEntry).
func decodeBatch(body []byte) ([]decGW, error) {
	d := &decoder{b: body}
	n := d.uvarint()
	if n > uint64(len(body)) { // every GroupWrite takes at least a byte
		return nil, errBadBody
	}
	gws := make([]decGW, 0, n)
	for range n {
		var w decGW
		w.group = storage.GroupID(d.uvarint())
		flags := d.byte()
		if flags&^(flagReset|flagEntries|flagState) != 0 {
			return nil, errBadBody
		}
		if flags&flagReset != 0 {
			w.reset = &storage.Position{Index: d.uvarint(), Term: d.uvarint()}
		}
		if flags&flagEntries != 0 {
			cnt := d.uvarint()
			first := d.uvarint()
			if d.err != nil || cnt == 0 || cnt > uint64(len(body)-d.off)/7 || first+cnt < first {
				return nil, errBadBody
			}
			w.entries = make([]decEntry, cnt)
			for i := range w.entries {
				e := &w.entries[i]
				e.index = first + uint64(i)
				e.term = d.uvarint()
				e.kind = storage.Kind(d.byte())
				e.crc = d.u32()
				e.n = int(d.uvarint())
				e.off = d.bytes(uint64(e.n))
			}
		}
		if flags&flagState != 0 {
			l := d.uvarint()
			off := d.bytes(l)
			if d.err == nil {
				w.state = body[off : off+int(l) : off+int(l)]
			}
		}
		w.truncBefore = d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		gws = append(gws, w)
	}
	if d.off != len(body) {
		return nil, errBadBody
	}
	return gws, nil
}

// groupMeta is one group in a checkpoint.
type groupMeta struct {
	group       storage.GroupID
	first, last uint64
	prevTerm    uint64
	state       []byte // nil: none
}

func appendCheckpoint(b []byte, ms []groupMeta) []byte {
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		b = binary.AppendUvarint(b, uint64(m.group))
		b = binary.AppendUvarint(b, m.first)
		b = binary.AppendUvarint(b, m.last)
		b = binary.AppendUvarint(b, m.prevTerm)
		if m.state == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(len(m.state)))
			b = append(b, m.state...)
		}
	}
	return b
}

func decodeCheckpoint(body []byte) ([]groupMeta, error) {
	d := &decoder{b: body}
	n := d.uvarint()
	if n > uint64(len(body))/5 {
		return nil, errBadBody
	}
	ms := make([]groupMeta, 0, n)
	for range n {
		m := groupMeta{group: storage.GroupID(d.uvarint()), first: d.uvarint(), last: d.uvarint(), prevTerm: d.uvarint()}
		switch d.byte() {
		case 0:
		case 1:
			l := d.uvarint()
			off := d.bytes(l)
			if d.err == nil {
				m.state = body[off : off+int(l) : off+int(l)]
			}
		default:
			return nil, errBadBody
		}
		if d.err != nil {
			return nil, d.err
		}
		if m.first == 0 || m.last+1 < m.first {
			return nil, fmt.Errorf("%w: checkpoint bounds [%d, %d]", errBadBody, m.first, m.last)
		}
		ms = append(ms, m)
	}
	if d.off != len(body) {
		return nil, errBadBody
	}
	return ms, nil
}

// decodeUvarintBody decodes a body that is one uvarint (drop, seal).
func decodeUvarintBody(body []byte) (uint64, error) {
	v, n := binary.Uvarint(body)
	if n <= 0 || n != len(body) {
		return 0, errBadBody
	}
	return v, nil
}
