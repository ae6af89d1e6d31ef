package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/storage"
)

// SeedEnv is the environment variable that makes RunCrashTests replay one
// iteration: STORAGETEST_SEED=1234 runs only the iteration of seed 1234.
const SeedEnv = "STORAGETEST_SEED"

// RunCrashTests checks that a persistent store recovers from a crash with
// a prefix of its writes. The harnesses newHarness makes must implement
// Crasher.
//
// Each iteration, with its own seed, opens a store and makes a random
// sequence of small Writes over a few groups (appends, overwrites,
// truncations, resets, state updates, drops; sync true or false at
// random), keeping a model of them. It then takes a crash image
// (Crasher.CrashCopy), opens it and checks that it holds exactly what the
// model held after some prefix of the GroupWrites and Drops (each GroupWrite
// whole or not at all), a prefix that covers every write a returned synced
// Write or a Drop covered. It finally writes to the recovered store,
// reopens it and checks that too.
//
// Iterations are small: 1000 of them should take seconds, not minutes.
func RunCrashTests(t *testing.T, newHarness HarnessMaker, iterations int) {
	base := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		base, iterations = seed, 1
	}
	t.Logf("crash tests: %d iterations from seed %d (replay one with %s=<seed>)", iterations, base, SeedEnv)
	for i := range iterations {
		seed := base + uint64(i)
		if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { crashIteration(t, newHarness, seed) }) {
			t.Logf("stopping after the first failure; replay it with %s=%d", SeedEnv, seed)
			return
		}
	}
}

// crashOp is one step of a crash test: a GroupWrite or a Drop.
type crashOp struct {
	w    *storage.GroupWrite
	drop storage.GroupID
}

func (m *model) applyOp(op crashOp) {
	if op.w != nil {
		m.apply(op.w)
	} else {
		m.drop(op.drop)
	}
}

// crashGroups are the groups crash tests pick from; one needs more than
// 32 bits.
var crashGroups = []storage.GroupID{1, 2, 3, 1<<40 + 7}

func crashIteration(t *testing.T, newHarness HarnessMaker, seed uint64) {
	checkLeaks(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := makeHarness(t, newHarness)
	cr, ok := h.(Crasher)
	if !ok {
		t.Fatalf("harness %T does not implement storagetest.Crasher", h)
	}
	ids := crashGroups[:1+rng.IntN(len(crashGroups))]
	s := openStore(t, h)
	m := newModel()
	var ops []crashOp
	synced := 0 // ops[:synced] must survive the crash
	for range 5 + rng.IntN(30) {
		if rng.IntN(15) == 0 {
			id := ids[rng.IntN(len(ids))]
			if err := s.Drop(ctx, id); err != nil {
				t.Fatalf("Drop(%d): %v", id, err)
			}
			m.drop(id)
			ops = append(ops, crashOp{drop: id})
			synced = len(ops)
			continue
		}
		ws := randomBatch(rng, m, ids)
		sync := rng.IntN(2) == 0
		write(t, s, m, sync, ws...)
		for i := range ws {
			ops = append(ops, crashOp{w: &ws[i]})
		}
		if sync {
			synced = len(ops)
		}
	}

	h2, err := cr.CrashCopy(ctx, s, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())))
	if err != nil {
		t.Fatalf("CrashCopy: %v", err)
	}
	t.Cleanup(h2.Close)
	checkModel(t, s, m, ids...) // CrashCopy left s alone
	closeStore(t, s)

	s2 := openStore(t, h2)
	got := make(map[storage.GroupID]*groupState)
	for _, id := range ids {
		if got[id], err = readGroup(s2, id); err != nil {
			t.Fatalf("after the crash: %v", err)
		}
	}
	listed, err := s2.Groups(ctx)
	if err != nil {
		t.Fatalf("after the crash: Groups: %v", err)
	}
	var match *model
	prefix := newModel()
	for k := 0; k <= len(ops); k++ {
		if k > 0 {
			prefix.applyOp(ops[k-1])
		}
		if k >= synced && sameGroups(got, prefix) && listMatches(listed, prefix) == nil {
			match = prefix.clone()
		}
	}
	if match == nil {
		t.Errorf("after the crash the store holds no prefix of its %d writes that includes the %d synced ones", len(ops), synced)
		want := newModel()
		for _, op := range ops[:synced] {
			want.applyOp(op)
		}
		for _, id := range ids {
			t.Logf("group %d: got %s", id, fmtGroup(got[id]))
			if d := diff(got[id], want.group(id)); d != "" {
				t.Logf("group %d: against the synced prefix: %s", id, d)
			}
			if d := diff(got[id], m.group(id)); d != "" {
				t.Logf("group %d: against all writes: %s", id, d)
			}
		}
		if err := listMatches(listed, want); err != nil {
			t.Logf("against the synced prefix: %v", err)
		}
		t.FailNow()
	}

	// The recovered store takes writes and keeps them.
	var ws []storage.GroupWrite
	for _, id := range ids {
		g := match.group(id)
		ws = append(ws, storage.GroupWrite{Group: id, Entries: ents(id, g.last()+1, g.last()+1, g.prevTerm+100, 10), State: []byte("recovered")})
	}
	write(t, s2, match, rng.IntN(2) == 0, ws...)
	checkModel(t, s2, match, ids...)
	closeStore(t, s2)
	s3 := openStore(t, h2)
	checkModel(t, s3, match, ids...)
	closeStore(t, s3)
}

// randomBatch makes a valid batch of small GroupWrites to distinct groups
// of ids, given the logs in m.
func randomBatch(rng *rand.Rand, m *model, ids []storage.GroupID) []storage.GroupWrite {
	n := 1 + rng.IntN(len(ids))
	perm := rng.Perm(len(ids))[:n]
	ws := make([]storage.GroupWrite, 0, n)
	for _, p := range perm {
		id := ids[p]
		g := m.group(id)
		first, last := g.first, g.last()
		term := g.term(last)
		w := storage.GroupWrite{Group: id}
		if rng.IntN(25) == 0 {
			idx := uint64(rng.IntN(int(last) + 5))
			term++
			w.Reset = &storage.Position{Index: idx, Term: term}
			first, last = idx+1, idx
		}
		if rng.IntN(5) != 0 {
			lo := last + 1
			if rng.IntN(4) == 0 {
				lo = first + uint64(rng.IntN(int(last+2-first)))
				term++
			}
			for i := range 1 + rng.IntN(4) {
				data := make([]byte, rng.IntN(64))
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				w.Entries = append(w.Entries, storage.Entry{Index: lo + uint64(i), Term: term, Kind: storage.Kind(rng.IntN(4)), Data: data})
			}
			last = w.Entries[len(w.Entries)-1].Index
		}
		if rng.IntN(3) == 0 || (w.Reset == nil && w.Entries == nil) {
			w.State = fmt.Appendf(nil, "state %d", rng.Uint32())
		}
		if rng.IntN(8) == 0 {
			w.TruncBefore = first + uint64(rng.IntN(int(last+2-first)))
		}
		ws = append(ws, w)
	}
	return ws
}

// sameGroups reports whether the groups read from a store equal m's.
func sameGroups(got map[storage.GroupID]*groupState, m *model) bool {
	for id, g := range got {
		if diff(g, m.group(id)) != "" {
			return false
		}
	}
	return true
}

func fmtGroup(g *groupState) string {
	s := fmt.Sprintf("[%d, %d] Term(%d)=%d state %s", g.first, g.last(), g.first-1, g.prevTerm, short(g.state))
	for _, e := range g.entries {
		s += fmt.Sprintf(" %d/%d", e.Index, e.Term)
	}
	return s
}
