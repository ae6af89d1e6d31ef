package pebblestore

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/chronik-go/chronik/core/storage"
)

// The key layout. Every key of a group starts with the group prefix, so that
// one range deletion drops a group and one iterator scans it; within a
// group the kinds sort in the order recovery reads them, entries last.
//
//	format key   0x00 "format"                         -> uvarint format version
//	meta         0x01 | group (8, BE) | 0x01           -> first (8, BE) | Term(first-1) (8, BE)
//	state        0x01 | group (8, BE) | 0x02           -> the state blob
//	term run     0x01 | group (8, BE) | 0x03 | index (8, BE) -> term (8, BE)
//	entry        0x01 | group (8, BE) | 0x04 | index (8, BE) -> uvarint term | kind (1) | data
//
// Big-endian numbers make byte order numeric order, so a group's entries
// are contiguous and sorted by index. A term run key says that the entries
// from its index up to the next run key's index (or LastIndex) have its
// term; the run keys of a group are exactly the runs of its in-memory index
// (see index), the first one at FirstIndex. The meta key is absent until a
// Reset or a TruncBefore moves FirstIndex off 1.
const (
	prefixFormat byte = 0x00
	prefixGroup  byte = 0x01
)

// kind is what a group key holds.
type kind byte

const (
	kindMeta  kind = 0x01
	kindState kind = 0x02
	kindRun   kind = 0x03
	kindEntry kind = 0x04
)

// formatVersion is the version of the layout above, kept under formatKey.
const formatVersion = 1

var formatKey = []byte("\x00format")

const (
	groupKeyLen = 1 + 8 + 1 // prefix, group, kind
	indexKeyLen = groupKeyLen + 8
)

// groupKey is the key of kind k of group g, without an index (meta, state,
// or the start of the runs or entries of g).
func groupKey(g storage.GroupID, k kind) []byte {
	b := make([]byte, groupKeyLen, indexKeyLen)
	b[0] = prefixGroup
	binary.BigEndian.PutUint64(b[1:], uint64(g))
	b[9] = byte(k)
	return b
}

// indexKey is the key of the run or entry of group g at index i.
func indexKey(g storage.GroupID, k kind, i uint64) []byte {
	b := make([]byte, indexKeyLen)
	putIndexKey(b, g, k, i)
	return b
}

// putIndexKey writes indexKey(g, k, i) to b[:indexKeyLen].
func putIndexKey(b []byte, g storage.GroupID, k kind, i uint64) {
	b[0] = prefixGroup
	binary.BigEndian.PutUint64(b[1:], uint64(g))
	b[9] = byte(k)
	binary.BigEndian.PutUint64(b[groupKeyLen:], i)
}

// kindEnd is the first key after every key of kind k of group g.
func kindEnd(g storage.GroupID, k kind) []byte { return groupKey(g, k+1) }

// groupStart and groupEnd bound every key of group g: [groupStart, groupEnd).
func groupStart(g storage.GroupID) []byte { return groupKey(g, 0) }

func groupEnd(g storage.GroupID) []byte {
	if g == math.MaxUint64 {
		return []byte{prefixGroup + 1}
	}
	return groupKey(g+1, 0)
}

// parsedKey is a group key taken apart.
type parsedKey struct {
	group storage.GroupID
	kind  kind
	index uint64 // runs and entries
}

// parseKey parses a key of the group key space.
func parseKey(b []byte) (parsedKey, error) {
	if len(b) < groupKeyLen || b[0] != prefixGroup {
		return parsedKey{}, fmt.Errorf("malformed key %x", b)
	}
	p := parsedKey{group: storage.GroupID(binary.BigEndian.Uint64(b[1:])), kind: kind(b[9])}
	switch p.kind {
	case kindMeta, kindState:
		if len(b) != groupKeyLen {
			return parsedKey{}, fmt.Errorf("malformed key %x", b)
		}
	case kindRun, kindEntry:
		if len(b) != indexKeyLen {
			return parsedKey{}, fmt.Errorf("malformed key %x", b)
		}
		p.index = binary.BigEndian.Uint64(b[groupKeyLen:])
	default:
		return parsedKey{}, fmt.Errorf("key %x of unknown kind %d", b, p.kind)
	}
	return p, nil
}

// encodeMeta is the value of a meta key.
func encodeMeta(first, prevTerm uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, first)
	binary.BigEndian.PutUint64(b[8:], prevTerm)
	return b
}

func decodeMeta(v []byte) (first, prevTerm uint64, err error) {
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("meta value of %d bytes, want 16", len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// encodeTerm is the value of a term run key.
func encodeTerm(term uint64) []byte { return binary.BigEndian.AppendUint64(nil, term) }

func decodeTerm(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("term value of %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// entryHeaderMax is the most an entry value holds besides its data.
const entryHeaderMax = binary.MaxVarintLen64 + 1

// appendEntry appends the value of e's entry key to b.
func appendEntry(b []byte, e *storage.Entry) []byte {
	b = binary.AppendUvarint(b, e.Term)
	b = append(b, byte(e.Kind))
	return append(b, e.Data...)
}

// decodeEntry decodes an entry value; Data aliases v.
func decodeEntry(v []byte) (term uint64, k storage.Kind, data []byte, err error) {
	term, n := binary.Uvarint(v)
	if n <= 0 || n >= len(v) {
		return 0, 0, nil, fmt.Errorf("malformed entry value of %d bytes", len(v))
	}
	return term, storage.Kind(v[n]), v[n+1:], nil
}
