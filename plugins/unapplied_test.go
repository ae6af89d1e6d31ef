package plugins

import (
	"fmt"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

func ents(term uint64, lo, hi uint64) []storage.Entry {
	var es []storage.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, storage.Entry{Index: i, Term: term, Kind: storage.KindNormal, Data: fmt.Appendf(nil, "%d/%d", term, i)})
	}
	return es
}

// The unapplied entries follow the log: appends, a suffix overwritten by a
// later term, entries that are not data, truncation and applies.
func TestUnapplied(t *testing.T) {
	var u unapplied
	has := func(i, term uint64, want bool) {
		t.Helper()
		d, ok := u.get(i, term)
		if ok != want || ok && string(d) != fmt.Sprintf("%d/%d", term, i) {
			t.Errorf("get(%d, %d) = %q, %v; want %v", i, term, d, ok, want)
		}
	}
	u.written(&storage.GroupWrite{Entries: ents(1, 1, 5)})
	has(3, 1, true)
	has(3, 2, false)
	u.written(&storage.GroupWrite{Entries: ents(2, 4, 6)}) // overwrites 4 and 5
	has(3, 1, true)
	has(4, 1, false)
	has(4, 2, true)
	has(6, 2, true)
	u.applied(4)
	has(4, 2, false)
	has(5, 2, true)
	u.written(&storage.GroupWrite{Entries: []storage.Entry{{Index: 7, Term: 2, Kind: storage.KindConfChange}}})
	has(6, 2, false) // dropped with the config entry: the run restarts after it
	u.written(&storage.GroupWrite{Entries: ents(2, 8, 9)})
	has(8, 2, true)
	u.written(&storage.GroupWrite{TruncBefore: 9})
	has(8, 2, false)
	has(9, 2, true)
	u.written(&storage.GroupWrite{Reset: &storage.Position{Index: 20, Term: 3}})
	has(9, 2, false)
	if u.bytes != 0 || len(u.ents) != 0 {
		t.Errorf("after a reset: %d entries, %d bytes", len(u.ents), u.bytes)
	}
}
