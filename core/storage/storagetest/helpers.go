package storagetest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/storage"
)

// checkLeaks makes t fail, at the very end, if goroutines started during t
// are still running then. Call it first in a test, so that its cleanup runs
// after those closing stores and harnesses.
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// makeHarness makes a harness that is closed when t ends.
func makeHarness(t testing.TB, newHarness HarnessMaker) Harness {
	t.Helper()
	h, err := newHarness(context.Background(), t)
	if err != nil {
		t.Fatalf("making harness: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// openStore opens a store from h; it is closed when t ends unless the test
// closed it before.
func openStore(t testing.TB, h Harness) storage.Store {
	t.Helper()
	s, err := h.Open(context.Background())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && storage.CodeOf(err) != storage.CodeClosed {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// closeStore closes s and fails t on error.
func closeStore(t testing.TB, s storage.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// write writes ws to s and applies it to m (if m is not nil), failing t on
// error.
func write(t testing.TB, s storage.Store, m *model, sync bool, ws ...storage.GroupWrite) {
	t.Helper()
	if m != nil {
		if err := m.check(ws); err != nil {
			t.Fatalf("bad test: the model rejects %v", err)
		}
	}
	if err := s.Write(context.Background(), ws, sync); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if m != nil {
		_ = m.write(ws)
	}
}

// wantCode fails t unless err has code c.
func wantCode(t testing.TB, err error, c storage.Code, what string) {
	t.Helper()
	if got := storage.CodeOf(err); got != c {
		t.Errorf("%s: got error %v (code %v), want code %v", what, err, got, c)
	}
}

// getLog returns the Log of group id.
func getLog(t testing.TB, s storage.Store, id storage.GroupID) storage.Log {
	t.Helper()
	l, err := s.Log(id)
	if err != nil {
		t.Fatalf("Log(%d): %v", id, err)
	}
	return l
}

// checkGroup fails t unless s holds for group id exactly what m does.
func checkGroup(t testing.TB, s storage.Store, m *model, id storage.GroupID) {
	t.Helper()
	got, err := readGroup(s, id)
	if err != nil {
		t.Errorf("reading group %d: %v", id, err)
		return
	}
	if d := diff(got, m.group(id)); d != "" {
		t.Errorf("group %d: %s", id, d)
	}
}

// checkModel fails t unless s holds what m does for every group in m and
// for the extra groups, and Groups agrees.
func checkModel(t testing.TB, s storage.Store, m *model, extra ...storage.GroupID) {
	t.Helper()
	for _, id := range m.ids() {
		checkGroup(t, s, m, id)
	}
	for _, id := range extra {
		checkGroup(t, s, m, id)
	}
	checkGroups(t, s, m, extra...)
}

// checkGroups fails t unless Groups lists every group of m that holds
// entries or state and none that m does not know (such as extra groups
// never written or dropped). A group that holds neither, such as one whose
// log was truncated away, may or may not be listed.
func checkGroups(t testing.TB, s storage.Store, m *model, extra ...storage.GroupID) {
	t.Helper()
	if err := groupsMatch(s, m); err != nil {
		t.Error(err)
	}
}

func groupsMatch(s storage.Store, m *model) error {
	ids, err := s.Groups(context.Background())
	if err != nil {
		return fmt.Errorf("Groups: %w", err)
	}
	return listMatches(ids, m)
}

// listMatches reports whether ids, as listed by Groups, fits m.
func listMatches(ids []storage.GroupID, m *model) error {
	listed := make(map[storage.GroupID]bool, len(ids))
	for _, id := range ids {
		if listed[id] {
			return fmt.Errorf("Groups lists %d twice: %v", id, ids)
		}
		listed[id] = true
	}
	for id, g := range m.groups {
		if g.holds() && !listed[id] {
			return fmt.Errorf("Groups %v does not list %d, which holds entries or state", ids, id)
		}
	}
	for _, id := range ids {
		if m.groups[id] == nil {
			return fmt.Errorf("Groups %v lists %d, which was never written or was dropped", ids, id)
		}
	}
	return nil
}

// payload is the deterministic data of entry (g, index, term): readers
// running concurrently with writers can check every entry they see.
func payload(g storage.GroupID, index, term uint64, size int) []byte {
	b := make([]byte, size)
	var seed [24]byte
	binary.LittleEndian.PutUint64(seed[0:], uint64(g))
	binary.LittleEndian.PutUint64(seed[8:], index)
	binary.LittleEndian.PutUint64(seed[16:], term)
	h := fnv.New64a()
	h.Write(seed[:])
	x := h.Sum64() | 1
	for i := range b {
		// xorshift: cheap, and different for every entry.
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// ents makes entries lo..hi (inclusive) of group g with the given term,
// data of size bytes from payload, and kinds cycling through all four.
func ents(g storage.GroupID, lo, hi, term uint64, size int) []storage.Entry {
	var es []storage.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, storage.Entry{Index: i, Term: term, Kind: storage.Kind(i % 4), Data: payload(g, i, term, size)})
	}
	return es
}

// validEntry reports whether e is what ents made for group g.
func validEntry(g storage.GroupID, e storage.Entry) bool {
	return e.Kind == storage.Kind(e.Index%4) && slices.Equal(e.Data, payload(g, e.Index, e.Term, len(e.Data)))
}

// isRace reports whether err is one a reader may see while a writer
// truncates under it.
func isRace(err error) bool {
	return errors.Is(err, storage.ErrCompacted) || errors.Is(err, storage.ErrUnavailable)
}
