package storagetest

import (
	"context"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// testReopen closes and reopens a persistent store: everything a Write or
// Drop did before Close is there after Open, synced or not.
func (c *conformance) testReopen(t *testing.T, h Harness) {
	ctx := context.Background()
	m := newModel()
	s := openStore(t, h)
	write(t, s, m, true,
		storage.GroupWrite{Group: 1, Entries: ents(1, 1, 10, 1, 100), State: []byte("g1 state")},
		storage.GroupWrite{Group: 2, Entries: ents(2, 1, 5, 1, 100)},
		storage.GroupWrite{Group: 3, Entries: ents(3, 1, 3, 1, 100), State: []byte("dropped")},
		storage.GroupWrite{Group: 4, State: []byte("state only")},
		storage.GroupWrite{Group: 5, Entries: ents(5, 1, 5, 1, 100)},
		storage.GroupWrite{Group: 7, Entries: ents(7, 1, 5, 1, 100)},
	)
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 6, 8, 2, 50), TruncBefore: 3})
	write(t, s, m, false, storage.GroupWrite{Group: 2, Reset: &storage.Position{Index: 100, Term: 4}, Entries: ents(2, 101, 103, 4, 10)})
	write(t, s, m, true, storage.GroupWrite{Group: 5, TruncBefore: 6})
	for _, id := range []storage.GroupID{3, 7} {
		if err := s.Drop(ctx, id); err != nil {
			t.Fatalf("Drop(%d): %v", id, err)
		}
		m.drop(id)
	}
	write(t, s, m, false, storage.GroupWrite{Group: 7, Entries: ents(7, 1, 2, 9, 10)})
	write(t, s, m, false, storage.GroupWrite{Group: 6, Entries: ents(6, 1, 4, 1, 10), State: []byte("unsynced")})
	checkModel(t, s, m, 3, 8)
	closeStore(t, s)

	s = openStore(t, h)
	checkModel(t, s, m, 3, 8)
	// Writing goes on where it stopped.
	write(t, s, m, false,
		storage.GroupWrite{Group: 1, Entries: ents(1, 9, 12, 2, 50)},
		storage.GroupWrite{Group: 5, Entries: ents(5, 6, 6, 1, 10)},
		storage.GroupWrite{Group: 6, Entries: ents(6, 3, 3, 3, 10), State: []byte("overwritten")},
	)
	if err := s.Drop(ctx, 4); err != nil {
		t.Fatalf("Drop(4): %v", err)
	}
	m.drop(4)
	checkModel(t, s, m, 3, 4, 8)
	closeStore(t, s)

	s = openStore(t, h)
	checkModel(t, s, m, 3, 4, 8)
	closeStore(t, s)
}
