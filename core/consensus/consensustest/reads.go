package consensustest

import (
	"sync"
	"testing"

	"github.com/chronik-go/chronik/core/consensus"
)

// readBarrier calls ReadBarrier on node id's group g with the suite's
// operation timeout.
func (c *cluster) readBarrier(id nodeID, g groupID, term uint64) error {
	ctx, cancel := c.ctxTimeout()
	defer cancel()
	return c.group(id, g).ReadBarrier(ctx, term)
}

// testReadBarrier: ReadBarrier succeeds on a healthy leader at its term,
// after which the leader has applied everything committed before the call;
// it fails with CodeNotLeader on a follower and for another term; many
// concurrent calls all complete; a group whose only voter is this node
// confirms at once.
func testReadBarrier(t *testing.T, s *suite) {
	c := newCluster(t, s, 3, clusterOpts{})
	const g, solo = 1, 2
	c.startGroupAll(g)
	all := c.ids()
	leader, term := c.waitLeader(g, all, c.electBound())
	c.proposeN(g, "before", 5)
	idx := c.propose(g, "last")

	lg := c.group(leader, g)
	commit := lg.Status().Commit
	if err := c.readBarrier(leader, g, term); err != nil {
		t.Fatalf("ReadBarrier on leader %d at term %d: %v", leader, term, err)
	}
	if st := lg.Status(); st.Applied < max(idx, commit) {
		t.Errorf("after ReadBarrier the leader applied %d; committed before the call: %d (last proposal %d)", st.Applied, commit, idx)
	}
	for _, id := range without(all, leader) {
		err := c.readBarrier(id, g, term)
		wantCode(t, "ReadBarrier on a follower", err, consensus.CodeNotLeader)
		if h := consensus.LeaderHint(err); h != 0 && h != leader {
			t.Errorf("ReadBarrier on follower %d hints leader %d, want %d", id, h, leader)
		}
	}
	wantCode(t, "ReadBarrier on the leader for a later term", c.readBarrier(leader, g, term+1), consensus.CodeNotLeader)
	wantCode(t, "ReadBarrier on the leader for an earlier term", c.readBarrier(leader, g, term-1), consensus.CodeNotLeader)

	// Concurrent callers share rounds; every call must still confirm.
	var wg sync.WaitGroup
	errs := make(chan error, 64*5)
	for range 64 {
		wg.Go(func() {
			for range 5 {
				if err := c.readBarrier(leader, g, term); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent ReadBarrier on the leader: %v", err)
	}

	n1 := c.node(1)
	c.startGroup(n1, solo, []nodeID{1})
	_, soloTerm := c.waitLeader(solo, []nodeID{1}, c.electBound())
	if err := c.readBarrier(1, solo, soloTerm); err != nil {
		t.Errorf("ReadBarrier on a one-voter group: %v", err)
	}
	c.checkViolations()
}

// testReadBarrierDeposed: the leader is cut off from both followers (it
// hears nothing, so it cannot learn that it was deposed); they elect a new
// leader, which commits more. ReadBarrier on the old leader, whether called
// right after the cut or once the new leader committed, must fail or block
// until its context ends, never return nil: a host would otherwise serve
// state older than what the new leader already serves. On the new leader
// it succeeds, with everything committed applied.
func testReadBarrierDeposed(t *testing.T, s *suite) {
	c := newCluster(t, s, 3, clusterOpts{})
	const g = 1
	c.startGroupAll(g)
	all := c.ids()
	old, term := c.waitLeader(g, all, c.electBound())
	c.proposeN(g, "before", 5)
	c.waitConverged(g, all)
	oldG := c.group(old, g)

	c.net.Isolate(old)
	early := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(c, c.electBound())
		defer cancel()
		early <- oldG.ReadBarrier(ctx, term)
	}()

	others := without(all, old)
	leader, newTerm := c.waitLeader(g, others, c.electBound())
	if newTerm <= term {
		t.Fatalf("new leader's term %d not above %d", newTerm, term)
	}
	c.proposeN(g, "during", 5)
	idx := c.propose(g, "last")
	newG := c.group(leader, g)
	commit := newG.Status().Commit
	if err := c.readBarrier(leader, g, newTerm); err != nil {
		t.Errorf("ReadBarrier on the new leader %d at term %d: %v", leader, newTerm, err)
	} else if st := newG.Status(); st.Applied < max(idx, commit) {
		t.Errorf("after ReadBarrier the new leader applied %d; committed before the call: %d (last proposal %d)", st.Applied, commit, idx)
	}

	ctx, cancel := contextWithTimeout(c, 2*s.be.ElectionTimeout)
	late := oldG.ReadBarrier(ctx, term)
	cancel()
	if late == nil {
		t.Errorf("ReadBarrier on the cut-off leader %d (term %d) returned nil after node %d led term %d and committed index %d", old, term, leader, newTerm, idx)
	}
	if err := <-early; err == nil {
		t.Errorf("ReadBarrier on leader %d (term %d), called as it was cut off, returned nil", old, term)
	} else {
		t.Logf("cut-off leader: ReadBarrier called at the cut: %v; after the new leader committed: %v", err, late)
	}

	c.net.HealAll()
	c.waitLeader(g, all, c.electBound())
	c.proposeN(g, "after", 3)
	c.waitConverged(g, all)
	c.checkViolations()
}
