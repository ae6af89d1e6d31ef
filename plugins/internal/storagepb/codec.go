package storagepb

import (
	"encoding/binary"
	"errors"

	"github.com/chronik-go/chronik/core/storage"
)

// Packed entries: for each entry, its index and term (8 bytes each, little
// endian), its kind (1 byte), the length of its data (uvarint) and the data.

const entryHeader = 8 + 8 + 1

// PackedSize is the size of es packed.
func PackedSize(es []storage.Entry) int {
	n := 0
	for i := range es {
		n += entryHeader + uvarintLen(uint64(len(es[i].Data))) + len(es[i].Data)
	}
	return n
}

// AppendEntries appends es, packed, to b.
func AppendEntries(b []byte, es []storage.Entry) []byte {
	for i := range es {
		e := &es[i]
		b = binary.LittleEndian.AppendUint64(b, e.Index)
		b = binary.LittleEndian.AppendUint64(b, e.Term)
		b = append(b, byte(e.Kind))
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}

// PackEntries returns es packed in a buffer of its own (nil for none).
func PackEntries(es []storage.Entry) []byte {
	if len(es) == 0 {
		return nil
	}
	return AppendEntries(make([]byte, 0, PackedSize(es)), es)
}

// PackEntriesViews packs es as PackEntries does and also returns views of
// them: entries like es whose Data alias the packed buffer (the host's tail
// cache keeps those, at no copy).
func PackEntriesViews(es []storage.Entry) ([]byte, []storage.Entry) {
	if len(es) == 0 {
		return nil, nil
	}
	b := make([]byte, 0, PackedSize(es))
	views := make([]storage.Entry, len(es))
	for i := range es {
		b = AppendEntries(b, es[i:i+1])
		views[i] = es[i]
		if n := len(es[i].Data); n > 0 {
			views[i].Data = b[len(b)-n : len(b) : len(b)]
		}
	}
	return b, views
}

var errMalformed = errors.New("malformed packed entries")

// UnpackEntries decodes packed entries. Their Data alias b, which the
// caller hands over: it must not change b afterwards. A malformed b is an
// error, never a panic.
func UnpackEntries(b []byte) ([]storage.Entry, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, err := countEntries(b)
	if err != nil {
		return nil, err
	}
	es := make([]storage.Entry, 0, n)
	for len(b) > 0 {
		e := storage.Entry{
			Index: binary.LittleEndian.Uint64(b),
			Term:  binary.LittleEndian.Uint64(b[8:]),
			Kind:  storage.Kind(b[16]),
		}
		l, k := binary.Uvarint(b[entryHeader:])
		b = b[entryHeader+k:]
		e.Data = b[:l:l]
		if l == 0 {
			e.Data = nil
		}
		b = b[l:]
		es = append(es, e)
	}
	return es, nil
}

// countEntries checks the framing of b and counts its entries.
func countEntries(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if len(b) < entryHeader {
			return 0, errMalformed
		}
		l, k := binary.Uvarint(b[entryHeader:])
		if k <= 0 || l > uint64(len(b)-entryHeader-k) {
			return 0, errMalformed
		}
		b = b[entryHeader+k+int(l):]
		n++
	}
	return n, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// StatusOf turns an error into a Status (nil for nil): its storage code and
// its message without the "storage: code:" prefix, which the receiving side
// adds back.
func StatusOf(err error) *Status {
	if err == nil {
		return nil
	}
	var e *storage.Error
	msg := err.Error()
	if errors.As(err, &e) && e == err { // not wrapped: drop the prefix Error adds
		switch {
		case e.Msg != "":
			msg = e.Msg
		case e.Err != nil:
			msg = e.Err.Error()
		default:
			msg = ""
		}
	}
	return &Status{Code: uint32(storage.CodeOf(err)), Message: msg}
}

// Err turns a Status back into an error that answers storage.CodeOf and
// errors.Is as the original did (nil for none).
func (s *Status) Err() error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return &storage.Error{Code: storage.Code(s.Code), Msg: s.Message}
}
