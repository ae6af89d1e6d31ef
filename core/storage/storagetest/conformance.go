package storagetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// RunConformanceTests checks the contract of package storage against the
// store newHarness opens. Sub-tests that need a capability the store does
// not declare in caps are skipped.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker, caps Capabilities) {
	c := &conformance{newHarness: newHarness, caps: caps}
	tests := []struct {
		name string
		f    func(t *testing.T, s storage.Store)
	}{
		{"EmptyGroup", c.testEmptyGroup},
		{"AppendAndRead", c.testAppendAndRead},
		{"Gap", c.testGap},
		{"NotConsecutive", c.testNotConsecutive},
		{"Overwrite", c.testOverwrite},
		{"TruncBefore", c.testTruncBefore},
		{"Reset", c.testReset},
		{"OutOfRange", c.testOutOfRange},
		{"MaxBytes", c.testMaxBytes},
		{"State", c.testState},
		{"SameGroupTwiceInBatch", c.testSameGroupTwice},
		{"Drop", c.testDrop},
		{"Groups", c.testGroups},
		{"CallerBuffersReusable", c.testCallerBuffers},
		{"ReturnedSlicesOwned", c.testReturnedSlices},
		{"ManyGroupsOneWrite", c.testManyGroups},
		{"LargeEntries", c.testLargeEntries},
		{"ConcurrentGroups", c.testConcurrentGroups},
		{"ConcurrentSameGroup", c.testConcurrentSameGroup},
		{"Closed", c.testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			h := makeHarness(t, newHarness)
			tt.f(t, openStore(t, h))
		})
	}
	t.Run("Reopen", func(t *testing.T) {
		if !caps.Persistent {
			t.Skip("store is not persistent")
		}
		checkLeaks(t)
		c.testReopen(t, makeHarness(t, newHarness))
	})
}

type conformance struct {
	newHarness HarnessMaker
	caps       Capabilities
}

func (c *conformance) testEmptyGroup(t *testing.T, s storage.Store) {
	ids, err := s.Groups(context.Background())
	if err != nil || len(ids) != 0 {
		t.Errorf("Groups of a new store = %v, %v; want none", ids, err)
	}
	l := getLog(t, s, 7)
	if first, err := l.FirstIndex(); first != 1 || err != nil {
		t.Errorf("FirstIndex = %d, %v; want 1", first, err)
	}
	if last, err := l.LastIndex(); last != 0 || err != nil {
		t.Errorf("LastIndex = %d, %v; want 0", last, err)
	}
	if term, err := l.Term(0); term != 0 || err != nil {
		t.Errorf("Term(0) = %d, %v; want 0", term, err)
	}
	_, err = l.Term(1)
	wantCode(t, err, storage.CodeUnavailable, "Term(1)")
	_, err = l.Entries(1, 2, 0)
	wantCode(t, err, storage.CodeUnavailable, "Entries(1, 2, 0)")
	if st, err := l.State(); st != nil || err != nil {
		t.Errorf("State = %q, %v; want nil", st, err)
	}
	checkModel(t, s, newModel(), 7)
}

func (c *conformance) testAppendAndRead(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 5, 1, 100), State: []byte("hard state 1")})
	write(t, s, m, false, storage.GroupWrite{Group: 1, Entries: ents(1, 6, 10, 2, 0)}) // empty data
	l := getLog(t, s, 1)
	if first, err := l.FirstIndex(); first != 1 || err != nil {
		t.Errorf("FirstIndex = %d, %v; want 1", first, err)
	}
	if last, err := l.LastIndex(); last != 10 || err != nil {
		t.Errorf("LastIndex = %d, %v; want 10", last, err)
	}
	for i := uint64(1); i <= 10; i++ {
		want := uint64(1)
		if i > 5 {
			want = 2
		}
		if term, err := l.Term(i); term != want || err != nil {
			t.Errorf("Term(%d) = %d, %v; want %d", i, term, err, want)
		}
	}
	es, err := l.Entries(3, 8, 0)
	if err != nil || len(es) != 5 {
		t.Fatalf("Entries(3, 8, 0) = %d entries, %v; want 5", len(es), err)
	}
	for i, e := range es {
		if d := diffEntry(e, m.group(1).entries[2+i]); d != "" {
			t.Errorf("Entries(3, 8, 0)[%d]: %s", i, d)
		}
	}
	if st, err := l.State(); string(st) != "hard state 1" || err != nil {
		t.Errorf("State = %q, %v; want %q", st, err, "hard state 1")
	}
	checkModel(t, s, m)
}

func (c *conformance) testGap(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 3, 1, 10), State: []byte("s1")})
	err := s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: ents(1, 5, 6, 1, 10), State: []byte("bad")}}, true)
	wantCode(t, err, storage.CodeInvalid, "Write with a gap")
	// The valid GroupWrites of a batch are not applied either.
	err = s.Write(context.Background(), []storage.GroupWrite{
		{Group: 2, Entries: ents(2, 1, 3, 1, 10), State: []byte("s2")},
		{Group: 1, Entries: ents(1, 4, 4, 1, 10), State: []byte("ok")},
		{Group: 3, Entries: ents(3, 2, 2, 1, 10)},
	}, true)
	wantCode(t, err, storage.CodeInvalid, "Write with a gap in a group never written")
	err = s.Write(context.Background(), []storage.GroupWrite{
		{Group: 2, State: []byte("s2")},
		{Group: 1, Entries: ents(1, 4, 4, 1, 10)},
		{Group: 1, Entries: ents(1, 6, 6, 1, 10)},
	}, false)
	wantCode(t, err, storage.CodeInvalid, "Write with a gap after an earlier GroupWrite of the group")
	checkModel(t, s, m, 2, 3)
	// The store still works.
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 4, 4, 1, 10)})
	checkModel(t, s, m, 2, 3)
}

func (c *conformance) testNotConsecutive(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 3, 1, 10)})
	bad := map[string][]storage.Entry{
		"skip":       {{Index: 4, Term: 1}, {Index: 6, Term: 1}},
		"repeat":     {{Index: 4, Term: 1}, {Index: 4, Term: 1}},
		"descending": {{Index: 4, Term: 1}, {Index: 3, Term: 1}},
	}
	for name, es := range bad {
		err := s.Write(context.Background(), []storage.GroupWrite{
			{Group: 2, Entries: ents(2, 1, 1, 1, 10)},
			{Group: 1, Entries: es},
		}, true)
		wantCode(t, err, storage.CodeInvalid, "Write of entries "+name)
	}
	// Below FirstIndex.
	write(t, s, m, true, storage.GroupWrite{Group: 1, TruncBefore: 3})
	err := s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: ents(1, 2, 4, 2, 10)}}, true)
	wantCode(t, err, storage.CodeInvalid, "Write below FirstIndex")
	// TruncBefore past LastIndex+1.
	err = s.Write(context.Background(), []storage.GroupWrite{{Group: 1, TruncBefore: 5}}, true)
	wantCode(t, err, storage.CodeInvalid, "Write with TruncBefore past LastIndex+1")
	checkModel(t, s, m, 2)
}

func (c *conformance) testOverwrite(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 10, 1, 20)})
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 6, 8, 2, 30)})
	l := getLog(t, s, 1)
	if last, err := l.LastIndex(); last != 8 || err != nil {
		t.Errorf("after overwriting 6..8: LastIndex = %d, %v; want 8", last, err)
	}
	if term, err := l.Term(8); term != 2 || err != nil {
		t.Errorf("Term(8) = %d, %v; want 2", term, err)
	}
	if term, err := l.Term(5); term != 1 || err != nil {
		t.Errorf("Term(5) = %d, %v; want 1", term, err)
	}
	_, err := l.Term(9)
	wantCode(t, err, storage.CodeUnavailable, "Term(9) of the old suffix")
	_, err = l.Entries(9, 11, 0)
	wantCode(t, err, storage.CodeUnavailable, "Entries(9, 11) of the old suffix")
	checkModel(t, s, m)

	// Overwrite the last entry only, then the whole log, then append at
	// LastIndex+1 in the same batch as a state.
	write(t, s, m, false, storage.GroupWrite{Group: 1, Entries: ents(1, 8, 9, 3, 5)})
	checkModel(t, s, m)
	write(t, s, m, false, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 2, 4, 5)})
	checkModel(t, s, m)
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 3, 12, 4, 7), State: []byte("term 4")})
	checkModel(t, s, m)
}

func (c *conformance) testTruncBefore(t *testing.T, s storage.Store) {
	m := newModel()
	es := ents(1, 1, 10, 1, 20)
	for i := range es {
		es[i].Term = uint64(i/3 + 1) // terms 1 1 1 2 2 2 3 3 3 4
	}
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: es})
	write(t, s, m, true, storage.GroupWrite{Group: 1, TruncBefore: 5})
	l := getLog(t, s, 1)
	if first, err := l.FirstIndex(); first != 5 || err != nil {
		t.Errorf("after TruncBefore 5: FirstIndex = %d, %v; want 5", first, err)
	}
	if term, err := l.Term(4); term != 2 || err != nil {
		t.Errorf("after TruncBefore 5: Term(4) = %d, %v; want 2", term, err)
	}
	_, err := l.Term(3)
	wantCode(t, err, storage.CodeCompacted, "Term(3) after TruncBefore 5")
	_, err = l.Entries(4, 6, 0)
	wantCode(t, err, storage.CodeCompacted, "Entries(4, 6) after TruncBefore 5")
	checkModel(t, s, m)

	// At or below FirstIndex: nothing happens.
	write(t, s, m, true, storage.GroupWrite{Group: 1, TruncBefore: 5}, storage.GroupWrite{Group: 1, TruncBefore: 2})
	checkModel(t, s, m)
	// With entries in the same GroupWrite: they are written first.
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 11, 12, 5, 20), TruncBefore: 12})
	checkModel(t, s, m)
	// Everything: the log is empty, Term(LastIndex) stays answerable and
	// appends continue after it.
	write(t, s, m, true, storage.GroupWrite{Group: 1, TruncBefore: 13})
	if first, err := l.FirstIndex(); first != 13 || err != nil {
		t.Errorf("after TruncBefore 13: FirstIndex = %d, %v; want 13", first, err)
	}
	if last, err := l.LastIndex(); last != 12 || err != nil {
		t.Errorf("after TruncBefore 13: LastIndex = %d, %v; want 12", last, err)
	}
	if term, err := l.Term(12); term != 5 || err != nil {
		t.Errorf("after TruncBefore 13: Term(12) = %d, %v; want 5", term, err)
	}
	checkModel(t, s, m)
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 13, 14, 5, 20)})
	checkModel(t, s, m)
}

func (c *conformance) testReset(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 10, 1, 20), State: []byte("before")})
	write(t, s, m, true, storage.GroupWrite{Group: 1, Reset: &storage.Position{Index: 100, Term: 7}})
	l := getLog(t, s, 1)
	if first, err := l.FirstIndex(); first != 101 || err != nil {
		t.Errorf("after Reset 100/7: FirstIndex = %d, %v; want 101", first, err)
	}
	if last, err := l.LastIndex(); last != 100 || err != nil {
		t.Errorf("after Reset 100/7: LastIndex = %d, %v; want 100", last, err)
	}
	if term, err := l.Term(100); term != 7 || err != nil {
		t.Errorf("after Reset 100/7: Term(100) = %d, %v; want 7", term, err)
	}
	_, err := l.Term(99)
	wantCode(t, err, storage.CodeCompacted, "Term(99) after Reset 100/7")
	_, err = l.Term(5)
	wantCode(t, err, storage.CodeCompacted, "Term(5) after Reset 100/7")
	_, err = l.Term(101)
	wantCode(t, err, storage.CodeUnavailable, "Term(101) after Reset 100/7")
	if st, err := l.State(); string(st) != "before" || err != nil {
		t.Errorf("Reset changed the state: %q, %v", st, err)
	}
	checkModel(t, s, m)

	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 101, 103, 7, 20)})
	checkModel(t, s, m)
	// Reset backwards, with entries and state in the same GroupWrite.
	write(t, s, m, true, storage.GroupWrite{Group: 1, Reset: &storage.Position{Index: 50, Term: 8}, Entries: ents(1, 51, 52, 8, 20), State: []byte("after")})
	checkModel(t, s, m)
	// Entries below the reset point are invalid.
	err = s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Reset: &storage.Position{Index: 60, Term: 9}, Entries: ents(1, 60, 61, 9, 20)}}, true)
	wantCode(t, err, storage.CodeInvalid, "Write with Reset 60 and entries from 60")
	// A reset of a group never written, to index 0.
	write(t, s, m, true, storage.GroupWrite{Group: 2, Reset: &storage.Position{Index: 0, Term: 0}, Entries: ents(2, 1, 1, 1, 20)})
	checkModel(t, s, m)
}

func (c *conformance) testOutOfRange(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 20, 1, 20), TruncBefore: 10})
	l := getLog(t, s, 1)
	for _, tc := range []struct {
		i    uint64
		code storage.Code
	}{{0, storage.CodeCompacted}, {8, storage.CodeCompacted}, {9, storage.CodeOK}, {20, storage.CodeOK}, {21, storage.CodeUnavailable}, {1 << 62, storage.CodeUnavailable}} {
		_, err := l.Term(tc.i)
		wantCode(t, err, tc.code, "Term")
		if err != nil && tc.code == storage.CodeOK {
			t.Errorf("Term(%d): %v", tc.i, err)
		}
	}
	for _, tc := range []struct {
		lo, hi uint64
		code   storage.Code
	}{
		{9, 12, storage.CodeCompacted},
		{1, 25, storage.CodeCompacted},
		{10, 21, storage.CodeOK},
		{15, 22, storage.CodeUnavailable},
		{21, 22, storage.CodeUnavailable},
		{12, 11, storage.CodeInvalid},
	} {
		_, err := l.Entries(tc.lo, tc.hi, 0)
		if got := storage.CodeOf(err); got != tc.code && !(tc.lo == 1 && got == storage.CodeUnavailable) {
			t.Errorf("Entries(%d, %d, 0): got %v (code %v), want code %v", tc.lo, tc.hi, err, got, tc.code)
		}
	}
}

func (c *conformance) testMaxBytes(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 10, 1, 100)})
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 11, 11, 1, 1000)})
	l := getLog(t, s, 1)
	size := ents(1, 1, 1, 1, 100)[0].Size()
	for _, tc := range []struct {
		lo, hi, max uint64
		want        int
	}{
		{1, 11, 0, 10},
		{1, 11, 3 * size, 3},
		{1, 11, 3*size + size/2, 3},
		{1, 11, 3*size - 1, 2},
		{1, 11, 1, 1},
		{1, 3, 10 * size, 2},
		{11, 12, 1, 1}, // alone past maxBytes
		{10, 12, size + 1, 1},
		{10, 12, 1 << 40, 2},
	} {
		es, err := l.Entries(tc.lo, tc.hi, tc.max)
		if err != nil || len(es) != tc.want {
			t.Errorf("Entries(%d, %d, %d) = %d entries, %v; want %d", tc.lo, tc.hi, tc.max, len(es), err, tc.want)
			continue
		}
		for i, e := range es {
			if d := diffEntry(e, m.group(1).entries[tc.lo-1+uint64(i)]); d != "" {
				t.Errorf("Entries(%d, %d, %d)[%d]: %s", tc.lo, tc.hi, tc.max, i, d)
			}
		}
	}
}

func (c *conformance) testState(t *testing.T, s storage.Store) {
	m := newModel()
	l := getLog(t, s, 1)
	write(t, s, m, true, storage.GroupWrite{Group: 1, State: []byte("only state")})
	if st, err := l.State(); string(st) != "only state" || err != nil {
		t.Errorf("State = %q, %v; want %q", st, err, "only state")
	}
	checkModel(t, s, m)
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 3, 1, 10)}) // nil: unchanged
	checkModel(t, s, m)
	write(t, s, m, false, storage.GroupWrite{Group: 1, Entries: ents(1, 4, 5, 1, 10), State: bytes.Repeat([]byte("x"), 4096)})
	checkModel(t, s, m)
	write(t, s, m, true, storage.GroupWrite{Group: 1, State: []byte{}})
	if st, err := l.State(); len(st) != 0 || err != nil {
		t.Errorf("State after writing an empty state = %q, %v; want empty", st, err)
	}
	write(t, s, m, true, storage.GroupWrite{Group: 1, State: []byte("last")}, storage.GroupWrite{Group: 2, State: []byte("other")})
	checkModel(t, s, m)
}

func (c *conformance) testSameGroupTwice(t *testing.T, s storage.Store) {
	// GroupWrites of the same group in one batch take effect in order.
	m := newModel()
	write(t, s, m, true,
		storage.GroupWrite{Group: 1, Entries: ents(1, 1, 5, 1, 10), State: []byte("a")},
		storage.GroupWrite{Group: 2, Entries: ents(2, 1, 2, 1, 10)},
		storage.GroupWrite{Group: 1, Entries: ents(1, 4, 8, 2, 10), TruncBefore: 3},
		storage.GroupWrite{Group: 1, Entries: ents(1, 9, 9, 2, 10), State: []byte("b")},
	)
	checkModel(t, s, m)
	write(t, s, m, true,
		storage.GroupWrite{Group: 1, Reset: &storage.Position{Index: 20, Term: 3}},
		storage.GroupWrite{Group: 1, Entries: ents(1, 21, 22, 3, 10)},
	)
	checkModel(t, s, m)
}

func (c *conformance) testDrop(t *testing.T, s storage.Store) {
	ctx := context.Background()
	m := newModel()
	write(t, s, m, true,
		storage.GroupWrite{Group: 1, Entries: ents(1, 1, 10, 1, 10), State: []byte("s1"), TruncBefore: 3},
		storage.GroupWrite{Group: 2, Entries: ents(2, 1, 10, 1, 10), State: []byte("s2")},
	)
	old := getLog(t, s, 1)
	if err := s.Drop(ctx, 1); err != nil {
		t.Fatalf("Drop(1): %v", err)
	}
	m.drop(1)
	checkModel(t, s, m, 1)
	if first, err := old.FirstIndex(); first != 1 || err != nil {
		t.Errorf("a Log taken before Drop: FirstIndex = %d, %v; want 1", first, err)
	}
	if last, err := old.LastIndex(); last != 0 || err != nil {
		t.Errorf("a Log taken before Drop: LastIndex = %d, %v; want 0", last, err)
	}
	if st, err := old.State(); st != nil || err != nil {
		t.Errorf("a Log taken before Drop: State = %q, %v; want nil", st, err)
	}
	// A dropped group starts again from scratch.
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 2, 5, 10)})
	checkModel(t, s, m)
	// Dropping a group never written is not an error, or CodeNotFound.
	if err := s.Drop(ctx, 99); err != nil && storage.CodeOf(err) != storage.CodeNotFound {
		t.Errorf("Drop of a group never written: %v", err)
	}
	checkModel(t, s, m, 99)
}

func (c *conformance) testGroups(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true,
		storage.GroupWrite{Group: 3, Entries: ents(3, 1, 1, 1, 10)},
		storage.GroupWrite{Group: 1 << 40, Entries: ents(1<<40, 1, 1, 1, 10)},
		storage.GroupWrite{Group: 2, State: []byte("state only")},
	)
	write(t, s, m, false, storage.GroupWrite{Group: 0, Entries: ents(0, 1, 1, 1, 10)})
	checkModel(t, s, m, 4)
	if err := s.Drop(context.Background(), 3); err != nil {
		t.Fatalf("Drop(3): %v", err)
	}
	m.drop(3)
	checkModel(t, s, m, 3, 4)
}

func (c *conformance) testCallerBuffers(t *testing.T, s storage.Store) {
	m := newModel()
	es := ents(1, 1, 5, 1, 64)
	state := []byte("state")
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: es, State: state})
	for i := range es {
		for j := range es[i].Data {
			es[i].Data[j] ^= 0xff
		}
		es[i].Index += 100
		es[i].Term += 100
	}
	copy(state, "XXXXX")
	checkModel(t, s, m)
}

func (c *conformance) testReturnedSlices(t *testing.T, s storage.Store) {
	m := newModel()
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 5, 1, 64), State: []byte("state")})
	l := getLog(t, s, 1)
	es, err := l.Entries(1, 6, 0)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	for i := range es {
		for j := range es[i].Data {
			es[i].Data[j] ^= 0xff
		}
		es[i].Term = 42
		es[i].Data = append(es[i].Data, "more"...)
	}
	_ = append(es[:2], storage.Entry{Index: 3, Term: 99})
	st, err := l.State()
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	copy(st, "XXXXX")
	_ = append(st[:1], 'Y')
	checkModel(t, s, m)
}

func (c *conformance) testManyGroups(t *testing.T, s storage.Store) {
	m := newModel()
	var ws []storage.GroupWrite
	for g := storage.GroupID(1); g <= 100; g++ {
		ws = append(ws, storage.GroupWrite{Group: g, Entries: ents(g, 1, uint64(g%5)+1, uint64(g), 100), State: []byte{byte(g)}})
	}
	write(t, s, m, true, ws...)
	checkModel(t, s, m)
	ws = ws[:0]
	for g := storage.GroupID(1); g <= 100; g += 2 {
		ws = append(ws, storage.GroupWrite{Group: g, Entries: ents(g, 1, 1, uint64(g)+1, 10), TruncBefore: 2})
	}
	write(t, s, m, true, ws...)
	checkModel(t, s, m)
}

func (c *conformance) testLargeEntries(t *testing.T, s storage.Store) {
	m := newModel()
	max := c.caps.maxEntry()
	big := ents(1, 1, 1, 1, max)
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: big})
	mid := max / 4
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 2, 4, 1, mid)}, storage.GroupWrite{Group: 2, Entries: ents(2, 1, 1, 1, mid)})
	checkModel(t, s, m)
	l := getLog(t, s, 1)
	es, err := l.Entries(1, 5, uint64(max/2))
	if err != nil || len(es) != 1 {
		t.Fatalf("Entries(1, 5, %d) = %d entries, %v; want 1", max/2, len(es), err)
	}
	if d := diffEntry(es[0], m.group(1).entries[0]); d != "" {
		t.Errorf("Entries(1, 5, %d)[0]: %s", max/2, d)
	}
	// Overwrite the large entry.
	write(t, s, m, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 1, 2, max)})
	checkModel(t, s, m)
}

func (c *conformance) testClosed(t *testing.T, s storage.Store) {
	ctx := context.Background()
	write(t, s, nil, true, storage.GroupWrite{Group: 1, Entries: ents(1, 1, 3, 1, 10), State: []byte("s")})
	l := getLog(t, s, 1)
	closeStore(t, s)
	wantCode(t, s.Write(ctx, []storage.GroupWrite{{Group: 1, Entries: ents(1, 4, 4, 1, 10)}}, true), storage.CodeClosed, "Write after Close")
	wantCode(t, s.Write(ctx, []storage.GroupWrite{{Group: 1, Entries: ents(1, 4, 4, 1, 10)}}, false), storage.CodeClosed, "Write(sync=false) after Close")
	_, err := s.Log(1)
	wantCode(t, err, storage.CodeClosed, "Log after Close")
	_, err = s.Groups(ctx)
	wantCode(t, err, storage.CodeClosed, "Groups after Close")
	wantCode(t, s.Drop(ctx, 1), storage.CodeClosed, "Drop after Close")
	_, err = l.FirstIndex()
	wantCode(t, err, storage.CodeClosed, "FirstIndex after Close")
	_, err = l.LastIndex()
	wantCode(t, err, storage.CodeClosed, "LastIndex after Close")
	_, err = l.Term(1)
	wantCode(t, err, storage.CodeClosed, "Term after Close")
	_, err = l.Entries(1, 2, 0)
	wantCode(t, err, storage.CodeClosed, "Entries after Close")
	_, err = l.State()
	wantCode(t, err, storage.CodeClosed, "State after Close")
	if err := s.Close(); err != nil && storage.CodeOf(err) != storage.CodeClosed {
		t.Errorf("second Close: %v; want nil or code %v", err, storage.CodeClosed)
	}
}
