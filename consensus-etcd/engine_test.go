package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/plugintest"
	memory "github.com/chronik-go/chronik/storage-memory"
)

// TestMain serves the engine as a plugin when the plugin-mode tests
// re-execute this binary (plugin_test.go), else runs the tests.
func TestMain(m *testing.M) {
	plugintest.ServeConsensusIfChild(NewFactory())
	goleak.VerifyTestMain(m)
}

// kv is a test state machine: the list of applied data, in order.
type kv struct {
	mu      sync.Mutex
	applied []string
	last    uint64
	leaders int
}

func (s *kv) Apply(_ context.Context, ents []consensus.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		if e.Index <= s.last {
			return fmt.Errorf("index %d applied after %d", e.Index, s.last)
		}
		s.applied = append(s.applied, string(e.Data))
		s.last = e.Index
	}
	return nil
}

func (s *kv) Snapshot(context.Context) (consensus.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return consensus.Snapshot{Index: s.last, Data: []byte(strings.Join(s.applied, "\n"))}, nil
}

func (s *kv) Restore(_ context.Context, snap consensus.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = nil
	if len(snap.Data) > 0 {
		s.applied = strings.Split(string(snap.Data), "\n")
	}
	s.last = snap.Index
	return nil
}

func (s *kv) LeaderChanged(context.Context, consensus.NodeID, uint64) {
	s.mu.Lock()
	s.leaders++
	s.mu.Unlock()
}

func (s *kv) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied)
}

// node is one broker of a test cluster: a store that outlives engine
// restarts, and the engine currently running on it.
type node struct {
	id    consensus.NodeID
	store storage.Store
	e     *Engine
	addr  string
	sms   map[storage.GroupID]*kv
}

type cluster struct {
	t     *testing.T
	nodes map[consensus.NodeID]*node
}

func testConfig() Config {
	c := DefaultConfig()
	c.TickInterval = 5 * time.Millisecond
	c.ElectionTicks = 20
	c.HeartbeatTicks = 2
	c.Workers = 2
	return *c
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: map[consensus.NodeID]*node{}}
	for i := 1; i <= n; i++ {
		c.addNode(consensus.NodeID(i))
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.e != nil {
				_ = nd.e.Shutdown(context.Background())
			}
			_ = nd.store.Close()
		}
	})
	return c
}

func (c *cluster) addNode(id consensus.NodeID) *node {
	nd := &node{id: id, store: memory.New(memory.Config{})}
	c.nodes[id] = nd
	c.startEngine(nd)
	return nd
}

// startEngine (re)starts nd's engine on its old address and wires peers.
func (c *cluster) startEngine(nd *node) {
	c.t.Helper()
	listen := nd.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	peers := map[consensus.NodeID]string{}
	for id, o := range c.nodes {
		if id != nd.id && o.addr != "" {
			peers[id] = o.addr
		}
	}
	var e *Engine
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err = New(context.Background(), component.Settings{}, testConfig(), consensus.Params{Node: nd.id, Store: nd.store, Listen: listen, Peers: peers})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old port may linger
	}
	if err != nil {
		c.t.Fatal(err)
	}
	nd.e, nd.addr, nd.sms = e, e.Addr(), map[storage.GroupID]*kv{}
	for id, o := range c.nodes {
		if id != nd.id && o.e != nil {
			_ = o.e.SetPeer(context.Background(), nd.id, nd.addr)
		}
	}
}

func (c *cluster) stopEngine(nd *node) {
	c.t.Helper()
	if err := nd.e.Shutdown(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	nd.e = nil
}

func (c *cluster) start(nd *node, g storage.GroupID, members ...consensus.NodeID) *kv {
	c.t.Helper()
	sm := &kv{}
	if _, err := nd.e.StartGroup(context.Background(), consensus.GroupSpec{ID: g, Members: members, StateMachine: sm}); err != nil {
		c.t.Fatal(err)
	}
	nd.sms[g] = sm
	return sm
}

func (c *cluster) startAll(g storage.GroupID) {
	var members []consensus.NodeID
	for id := range c.nodes {
		members = append(members, id)
	}
	slices.Sort(members)
	for _, nd := range c.nodes {
		c.start(nd, g, members...)
	}
}

func waitFor(t *testing.T, what string, cond func() bool, info ...func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var extra string
			for _, f := range info {
				extra += f()
			}
			t.Fatalf("timed out waiting for %s%s", what, extra)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leader waits until the running members agree on one leader of g.
func (c *cluster) leader(g storage.GroupID) *node {
	c.t.Helper()
	var lead *node
	waitFor(c.t, fmt.Sprintf("a leader of group %d", g), func() bool {
		lead = nil
		var id consensus.NodeID
		for _, nd := range c.nodes {
			if nd.e == nil {
				continue
			}
			gr, ok := nd.e.Group(g)
			if !ok {
				continue
			}
			st := gr.Status()
			if st.Role == consensus.RoleLeader {
				if lead != nil {
					return false
				}
				lead, id = nd, nd.id
			}
		}
		if lead == nil {
			return false
		}
		for _, nd := range c.nodes {
			if nd.e == nil {
				continue
			}
			gr, ok := nd.e.Group(g)
			if !ok {
				continue
			}
			// Only voters must agree; a node not yet added knows nothing.
			if st := gr.Status(); slices.Contains(st.Voters, nd.id) && st.Leader != id {
				return false
			}
		}
		return true
	}, func() string {
		var b strings.Builder
		for _, nd := range c.nodes {
			if nd.e == nil {
				continue
			}
			if gr, ok := nd.e.Group(g); ok {
				fmt.Fprintf(&b, "\n%+v quiesced=%v", gr.Status(), gr.(*group).quiesced.Load())
			}
		}
		return b.String()
	})
	return lead
}

// propose proposes on the current leader, retrying across leader changes.
func (c *cluster) propose(g storage.GroupID, data string) uint64 {
	c.t.Helper()
	var idx uint64
	waitFor(c.t, "proposal "+data, func() bool {
		nd := c.leader(g)
		gr, _ := nd.e.Group(g)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		idx, err = gr.Propose(ctx, []byte(data))
		return err == nil
	})
	return idx
}

// converged waits until every running member of g applied want.
func (c *cluster) converged(g storage.GroupID, want []string) {
	c.t.Helper()
	for _, nd := range c.nodes {
		if nd.e == nil || nd.sms[g] == nil {
			continue
		}
		sm := nd.sms[g]
		waitFor(c.t, fmt.Sprintf("node %d to apply %d entries of group %d", nd.id, len(want), g), func() bool {
			return len(sm.list()) >= len(want)
		})
		if got := sm.list(); !slices.Equal(got, want) {
			c.t.Fatalf("node %d group %d applied %q, want %q", nd.id, g, got, want)
		}
	}
}

func TestProposeReplicates(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	lead := c.leader(1)
	gr, _ := lead.e.Group(1)
	var want []string
	var last uint64
	for i := range 100 {
		d := fmt.Sprintf("entry-%d", i)
		idx, err := gr.Propose(context.Background(), []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		if idx <= last {
			t.Fatalf("index %d after %d", idx, last)
		}
		last = idx
		want = append(want, d)
	}
	c.converged(1, want)

	// The store holds the data verbatim at the returned index.
	lg, _ := lead.store.Log(1)
	ents, err := lg.Entries(last, last+1, 0)
	if err != nil || len(ents) != 1 || ents[0].Kind != storage.KindNormal || string(ents[0].Data) != "entry-99" {
		t.Fatalf("stored entry at %d: %+v, %v", last, ents, err)
	}

	// Followers refuse with a hint.
	for _, nd := range c.nodes {
		if nd == lead {
			continue
		}
		fg, _ := nd.e.Group(1)
		_, err := fg.Propose(context.Background(), []byte("x"))
		if consensus.CodeOf(err) != consensus.CodeNotLeader || consensus.LeaderHint(err) != lead.id {
			t.Fatalf("follower propose: %v", err)
		}
	}
	if _, err := gr.Propose(context.Background(), nil); consensus.CodeOf(err) != consensus.CodeInvalid {
		t.Fatalf("empty propose: %v", err)
	}
}

func TestConcurrentProposals(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	gr, _ := c.leader(1).e.Group(1)
	var wg sync.WaitGroup
	idxs := make([]uint64, 200)
	for i := range idxs {
		wg.Go(func() {
			idx, err := gr.Propose(context.Background(), fmt.Appendf(nil, "p%d", i))
			if err != nil {
				t.Error(err)
			}
			idxs[i] = idx
		})
	}
	wg.Wait()
	slices.Sort(idxs)
	if len(slices.Compact(idxs)) != 200 {
		t.Fatal("duplicate indexes")
	}
	var ref []string
	waitFor(t, "all applied", func() bool {
		for _, nd := range c.nodes {
			if len(nd.sms[1].list()) != 200 {
				return false
			}
		}
		return true
	})
	for _, nd := range c.nodes {
		l := nd.sms[1].list()
		if ref == nil {
			ref = l
		} else if !slices.Equal(ref, l) {
			t.Fatalf("replicas differ")
		}
	}
}

func TestLeaderFailover(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	want := []string{c.propose1(1, "a"), c.propose1(1, "b")}
	c.converged(1, want)
	old := c.leader(1)
	c.stopEngine(old)
	nl := c.leader(1)
	if nl == old {
		t.Fatal("stopped node still leads")
	}
	want = append(want, c.propose1(1, "c"))
	c.converged(1, want)

	// The old leader comes back as a follower and catches up.
	c.startEngine(old)
	c.start(old, 1)
	want = append(want, c.propose1(1, "d"))
	c.converged(1, want)
}

func (c *cluster) propose1(g storage.GroupID, d string) string {
	c.propose(g, d)
	return d
}

func TestRestartFromStores(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	var want []string
	for i := range 20 {
		want = append(want, c.propose1(1, fmt.Sprint(i)))
	}
	c.converged(1, want)
	for _, nd := range c.nodes {
		c.stopEngine(nd)
	}
	for _, nd := range c.nodes {
		c.startEngine(nd)
	}
	for _, nd := range c.nodes {
		c.start(nd, 1) // state in the store: no members needed
	}
	c.converged(1, want) // rebuilt by replaying the log
	want = append(want, c.propose1(1, "after"))
	c.converged(1, want)
}

func TestStopGroupFailsCalls(t *testing.T) {
	c := newCluster(t, 1)
	c.startAll(1)
	nd := c.leader(1)
	gr, _ := nd.e.Group(1)
	if _, err := gr.Propose(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := nd.e.StartGroup(context.Background(), consensus.GroupSpec{ID: 1, StateMachine: &kv{}}); consensus.CodeOf(err) != consensus.CodeExists {
		t.Fatalf("double start: %v", err)
	}
	if err := nd.e.StopGroup(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := gr.Propose(context.Background(), []byte("y")); !errors.Is(err, consensus.ErrStopped) {
		t.Fatalf("propose after stop: %v", err)
	}
	if err := nd.e.StopGroup(context.Background(), 1); consensus.CodeOf(err) != consensus.CodeNotFound {
		t.Fatalf("stop twice: %v", err)
	}
	// Restart from the store, then delete.
	sm := c.start(nd, 1)
	waitFor(t, "replay", func() bool { return len(sm.list()) == 1 })
	if err := nd.e.DeleteGroup(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	lg, _ := nd.store.Log(1)
	if last, _ := lg.LastIndex(); last != 0 {
		t.Fatalf("deleted group still has entries up to %d", last)
	}
}

func TestMembershipChange(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	want := []string{c.propose1(1, "a")}
	n4 := c.addNode(4)
	c.start(n4, 1) // no members: waits for the leader
	lead := c.leader(1)
	gr, _ := lead.e.Group(1)
	if err := gr.ChangeMembership(context.Background(), consensus.MembershipChange{Type: consensus.AddLearner, Node: 4}); err != nil {
		t.Fatal(err)
	}
	c.converged(1, want)
	g4, _ := n4.e.Group(1)
	waitFor(t, "node 4 learner", func() bool { return g4.Status().Role == consensus.RoleLearner })
	if err := gr.ChangeMembership(context.Background(), consensus.MembershipChange{Type: consensus.AddVoter, Node: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 voters", func() bool { return len(gr.Status().Voters) == 4 && len(g4.Status().Voters) == 4 })
	want = append(want, c.propose1(1, "b"))
	c.converged(1, want)

	// Remove a follower; the group goes on with three.
	var victim *node
	for _, nd := range c.nodes {
		if nd != lead && nd.id != 4 {
			victim = nd
		}
	}
	if err := gr.ChangeMembership(context.Background(), consensus.MembershipChange{Type: consensus.RemoveNode, Node: victim.id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 voters", func() bool { return len(gr.Status().Voters) == 3 })
	c.stopEngine(victim)
	want = append(want, c.propose1(1, "c"))
	c.converged(1, want)

	// Leadership moves to node 4.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := gr.TransferLeadership(ctx, 4); err != nil {
		for _, nd := range c.nodes {
			if nd.e != nil {
				g, _ := nd.e.Group(1)
				t.Logf("%+v", g.Status())
			}
		}
		t.Fatal(err)
	}
	if c.leader(1) != n4 {
		t.Fatal("node 4 does not lead after transfer")
	}
	want = append(want, c.propose1(1, "d"))
	c.converged(1, want)
}

func TestCompactionAndSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll(1)
	var want []string
	for i := range 10 {
		want = append(want, c.propose1(1, fmt.Sprint("a", i)))
	}
	c.converged(1, want)
	lead := c.leader(1)
	var lag *node
	for _, nd := range c.nodes {
		if nd != lead {
			lag = nd
		}
	}
	if err := lag.e.StopGroup(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	delete(lag.sms, 1)
	for i := range 30 {
		want = append(want, c.propose1(1, fmt.Sprint("b", i)))
	}
	c.converged(1, want)
	for _, nd := range c.nodes {
		if nd == lag {
			continue
		}
		gr, _ := nd.e.Group(1)
		if err := gr.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		lg, _ := nd.store.Log(1)
		first, _ := lg.FirstIndex()
		if applied := gr.Status().Applied; first != applied+1 {
			t.Fatalf("node %d: first index %d after compacting at applied %d", nd.id, first, applied)
		}
	}
	want = append(want, c.propose1(1, "c"))
	// The lagging follower needs entries the others dropped: it gets the
	// snapshot, restores from it and follows on.
	sm := c.start(lag, 1)
	c.converged(1, want)
	lg, _ := lag.store.Log(1)
	if first, _ := lg.FirstIndex(); first <= 12 {
		t.Fatalf("lagging node's log starts at %d: not reset by a snapshot", first)
	}
	want = append(want, c.propose1(1, "d"))
	c.converged(1, want)
	_ = sm

	// Restart everything: state machines come back from snapshot + log.
	for _, nd := range c.nodes {
		c.stopEngine(nd)
	}
	for _, nd := range c.nodes {
		c.startEngine(nd)
		c.start(nd, 1)
	}
	c.converged(1, want)
}

func TestManyGroupsQuiesce(t *testing.T) {
	const groups = 200
	c := newCluster(t, 3)
	for g := 1; g <= groups; g++ {
		c.startAll(storage.GroupID(g))
	}
	var wg sync.WaitGroup
	for g := 1; g <= groups; g++ {
		wg.Go(func() { c.propose(storage.GroupID(g), fmt.Sprint("g", g)) })
	}
	wg.Wait()
	for g := 1; g <= groups; g++ {
		c.converged(storage.GroupID(g), []string{fmt.Sprint("g", g)})
	}
	// Idle groups quiesce on every node.
	waitFor(t, "all groups quiesced", func() bool {
		for _, nd := range c.nodes {
			for _, g := range nd.e.snapshotGroups() {
				if !g.quiesced.Load() {
					return false
				}
			}
		}
		return true
	})
	// A quiesced group wakes for a proposal.
	c.converged(7, []string{"g7"})
	want := []string{"g7", c.propose1(7, "again")}
	c.converged(7, want)

	// Kill a node: groups it led elect new leaders.
	var victim *node
	for _, nd := range c.nodes {
		victim = nd
		break
	}
	c.stopEngine(victim)
	for g := 1; g <= groups; g += 17 {
		c.propose(storage.GroupID(g), "after")
	}
}
