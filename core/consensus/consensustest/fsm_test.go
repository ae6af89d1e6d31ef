package consensustest

import (
	"context"
	"strings"
	"testing"

	"github.com/chronik-go/chronik/core/consensus"
)

func TestFSMSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	rec := newGroupRec(1)
	a := newFSM(rec, 1)
	a.Apply(ctx, []consensus.Entry{{Index: 2, Data: []byte("x")}, {Index: 5, Data: nil}, {Index: 7, Data: []byte("yy")}})
	snap, err := a.Snapshot(ctx)
	if err != nil || snap.Index != 7 {
		t.Fatalf("Snapshot = %+v, %v", snap, err)
	}
	b := newFSM(rec, 2)
	if err := b.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	b.Apply(ctx, []consensus.Entry{{Index: 8, Data: []byte("z")}})
	a.Apply(ctx, []consensus.Entry{{Index: 8, Data: []byte("z")}})
	if d := firstDiff(a.snapshot(), b.snapshot()); d >= 0 || len(a.snapshot()) != 4 {
		t.Fatalf("restored state differs at %d: %v vs %v", d, a.snapshot(), b.snapshot())
	}
	if v := rec.takeViolations(); len(v) > 0 {
		t.Fatalf("violations: %v", v)
	}
}

func TestFSMDetectsBreaches(t *testing.T) {
	ctx := context.Background()
	rec := newGroupRec(1)
	f := newFSM(rec, 1)
	f.Apply(ctx, []consensus.Entry{{Index: 3, Data: []byte("a")}})
	f.Apply(ctx, []consensus.Entry{{Index: 3, Data: []byte("a")}}) // again
	f.close()
	f.Apply(ctx, []consensus.Entry{{Index: 4, Data: []byte("b")}}) // after shutdown
	rec.observe(1, 1, 5, "test")
	rec.observe(2, 1, 5, "test")
	rec.observe(3, 2, 5, "test") // second leader in term 5
	rec.observe(3, 0, 6, "test") // none known: ignored
	rec.ack(10, []byte("p"))
	rec.ack(10, []byte("q"))
	v := strings.Join(rec.takeViolations(), "\n")
	for _, want := range []string{"not increasing", "after the engine was shut down", "two leaders", "acknowledged twice"} {
		if !strings.Contains(v, want) {
			t.Errorf("breach %q not reported; got:\n%s", want, v)
		}
	}
}

func TestMissingAcked(t *testing.T) {
	st := []record{{1, []byte("a")}, {3, []byte("b")}}
	if why := missingAcked(st, map[uint64][]byte{1: []byte("a"), 3: []byte("b")}); why != "" {
		t.Fatal(why)
	}
	if why := missingAcked(st, map[uint64][]byte{2: []byte("a")}); why == "" {
		t.Fatal("missing index not reported")
	}
	if why := missingAcked(st, map[uint64][]byte{3: []byte("c")}); why == "" {
		t.Fatal("different data not reported")
	}
}
