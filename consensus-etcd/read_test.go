package etcd

import (
	"context"
	"sync"
	"testing"
)

// TestReadBarrierQuiescedAndCoalesced: a quiesced leader wakes for a
// ReadBarrier and quiesces again afterwards; concurrent barriers share
// ReadIndex rounds.
func TestReadBarrierQuiescedAndCoalesced(t *testing.T) {
	c := newCluster(t, 3)
	const g = 1
	c.startAll(g)
	c.propose1(g, "x")
	lead := c.leader(g)
	gr, _ := lead.e.Group(g)
	grp := gr.(*group)
	waitFor(t, "the leader quiesced", grp.quiesced.Load)
	term := grp.Status().Term
	ctx := context.Background()
	if err := grp.ReadBarrier(ctx, term); err != nil {
		t.Fatalf("ReadBarrier on a quiesced leader: %v", err)
	}
	waitFor(t, "the leader quiesced again", grp.quiesced.Load)

	const callers, each = 100, 10
	before := grp.readRounds.Load()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				if err := grp.ReadBarrier(ctx, term); err != nil {
					t.Errorf("ReadBarrier: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	rounds := grp.readRounds.Load() - before
	t.Logf("%d barriers in %d ReadIndex rounds", callers*each, rounds)
	if rounds >= callers*each {
		t.Errorf("%d barriers took %d rounds: not coalesced", callers*each, rounds)
	}
}
