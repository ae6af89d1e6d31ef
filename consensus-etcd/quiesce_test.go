package etcd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
	memory "github.com/chronik-go/chronik/storage-memory"
)

// allQuiesced waits until group g is quiesced on every running node.
func (c *cluster) allQuiesced(g storage.GroupID) {
	c.t.Helper()
	waitFor(c.t, "group quiesced everywhere", func() bool {
		for _, nd := range c.nodes {
			if nd.e == nil {
				continue
			}
			gr := nd.e.group(g)
			if gr == nil || !gr.quiesced.Load() {
				return false
			}
		}
		return true
	})
}

// A quiesced leader that stops hearing from a quorum must tick again, so
// that CheckQuorum deposes it. It used to be woken by the ticker and
// quiesce again in the same round (its followers were still caught up on
// paper), so it stayed leader forever and never ticked.
func TestQuiescedLeaderWithoutQuorumStepsDown(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	c.propose(1, "x")
	c.converged(1, []string{"x"})
	c.allQuiesced(1)
	lead := c.leader(1)
	for _, nd := range c.nodes {
		if nd != lead {
			c.stopEngine(nd)
		}
	}
	gr := lead.e.group(1)
	waitFor(t, "the leader without a quorum to step down", func() bool {
		return gr.Status().Role != consensus.RoleLeader
	}, func() string {
		return fmt.Sprintf("\nstill leading; quiesced=%v", gr.quiesced.Load())
	})
	if gr.quiesced.Load() {
		t.Fatal("a deposed leader is still quiesced")
	}
}

// A group whose only voter is this node campaigns at once: with a tick
// interval of an hour, it could not otherwise become leader during the test.
func TestSoleVoterCampaignsAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.TickInterval = time.Hour
	st := memory.New(memory.Config{})
	e, err := New(context.Background(), component.Settings{}, cfg, consensus.Params{Node: 1, Store: st, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Shutdown(context.Background())
		_ = st.Close()
	})
	for g := storage.GroupID(1); g <= 3; g++ {
		gr, err := e.StartGroup(context.Background(), consensus.GroupSpec{ID: g, Members: []consensus.NodeID{1}, StateMachine: &kv{}})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the sole voter to lead", func() bool { return gr.Status().Role == consensus.RoleLeader })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = gr.Propose(ctx, []byte("x"))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	// After a restart, the group leads again without waiting.
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err = New(context.Background(), component.Settings{}, cfg, consensus.Params{Node: 1, Store: st, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := e.StartGroup(context.Background(), consensus.GroupSpec{ID: 1, StateMachine: &kv{}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted sole voter to lead", func() bool { return gr.Status().Role == consensus.RoleLeader })
}
