package storagepb

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

func TestPackRoundTrip(t *testing.T) {
	es := []storage.Entry{
		{Index: 1, Term: 1, Kind: storage.KindNoop},
		{Index: 2, Term: 1, Kind: storage.KindNormal, Data: []byte("hello")},
		{Index: 3, Term: 7, Kind: storage.KindConfChangeV2, Data: bytes.Repeat([]byte{9}, 300)},
	}
	b := PackEntries(es)
	if len(b) != PackedSize(es) {
		t.Fatalf("packed %d bytes, PackedSize says %d", len(b), PackedSize(es))
	}
	got, err := UnpackEntries(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(es) {
		t.Fatalf("got %v, want %v", got, es)
	}
	if got[0].Data != nil {
		t.Errorf("empty data unpacked as %v, want nil", got[0].Data)
	}
	b2, views := PackEntriesViews(es)
	if !bytes.Equal(b2, b) || fmt.Sprint(views) != fmt.Sprint(es) {
		t.Fatalf("PackEntriesViews = %x, %v; want %x, %v", b2, views, b, es)
	}
	if &views[2].Data[0] == &es[2].Data[0] || &views[2].Data[len(views[2].Data)-1] != &b2[len(b2)-1] {
		t.Error("views do not alias the packed buffer")
	}
}

func TestStatusKeepsCode(t *testing.T) {
	for _, err := range []error{
		storage.Errorf(storage.CodeCompacted, "index %d below %d", 3, 5),
		storage.ErrClosed,
		fmt.Errorf("wrapped: %w", storage.ErrInvalid),
		errors.New("plain"),
	} {
		back := StatusOf(err).Err()
		if storage.CodeOf(back) != storage.CodeOf(err) {
			t.Errorf("%v: code %v came back as %v", err, storage.CodeOf(err), storage.CodeOf(back))
		}
		var se *storage.Error
		if errors.As(err, &se) && se == err && back.Error() != err.Error() {
			t.Errorf("message %q came back as %q", err.Error(), back.Error())
		}
		for _, s := range []error{storage.ErrCompacted, storage.ErrClosed, storage.ErrInvalid} {
			if errors.Is(back, s) != errors.Is(err, s) {
				t.Errorf("%v: errors.Is(%v) differs across the boundary", err, s)
			}
		}
	}
	if StatusOf(nil).Err() != nil {
		t.Error("nil did not come back as nil")
	}
}

// FuzzUnpackEntries: malformed input is an error, never a panic, and what
// decodes re-encodes to the same bytes.
func FuzzUnpackEntries(f *testing.F) {
	f.Add(PackEntries([]storage.Entry{{Index: 1, Term: 2, Data: []byte("x")}}))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := UnpackEntries(b)
		if err != nil {
			return
		}
		if again := PackEntries(es); !bytes.Equal(again, b) && len(b) > 0 {
			// Uvarints have more than one encoding (padded with 0x80): only
			// check that the re-encoded bytes decode to the same entries.
			es2, err := UnpackEntries(again)
			if err != nil || fmt.Sprint(es2) != fmt.Sprint(es) {
				t.Fatalf("re-encoding changed the entries: %v vs %v (%v)", es, es2, err)
			}
		}
	})
}
