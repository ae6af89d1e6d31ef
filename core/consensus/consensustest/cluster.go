package consensustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/netfault"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
)

type (
	nodeID  = consensus.NodeID
	groupID = consensus.GroupID
)

// cluster is a set of nodes, each an Engine over its own store, talking
// through a netfault.Network (or directly, for benchmarks).
type cluster struct {
	t      testing.TB
	ctx    context.Context
	be     Backend
	stores StoreMaker
	caps   Capabilities
	direct bool // no proxies: peers dial each other's listeners

	net   *netfault.Network[nodeID]
	leaks goleak.Option

	mu     sync.Mutex
	nodes  map[nodeID]*node
	groups map[groupID]*groupRec
}

// node is one broker of the cluster.
type node struct {
	id      nodeID
	harness storagetest.Harness
	store   storage.Store // nil while stopped (persistent stores)
	eng     consensus.Engine
	running bool

	// per group: the spec's members, the running Group, its state machine
	members map[groupID][]nodeID
	grps    map[groupID]consensus.Group
	sms     map[groupID]*fsm
}

type clusterOpts struct {
	direct bool
}

// newCluster starts n engines (ids 1..n) and the network between them. The
// cluster is torn down, and checked for leaked goroutines, by t.Cleanup.
func newCluster(t testing.TB, s *suite, n int, o clusterOpts) *cluster {
	t.Helper()
	c := &cluster{
		t:      t,
		ctx:    context.Background(),
		be:     s.be,
		stores: s.stores,
		caps:   s.caps,
		direct: o.direct,
		leaks:  goleak.IgnoreCurrent(),
		nodes:  map[nodeID]*node{},
		groups: map[groupID]*groupRec{},
	}
	t.Cleanup(c.teardown)
	addrs := map[nodeID]string{}
	for i := 1; i <= n; i++ {
		nd := c.newNode(nodeID(i))
		c.startEngine(nd)
		addrs[nd.id] = nd.eng.Addr()
	}
	if !c.direct {
		nw, err := netfault.NewNetwork(addrs)
		if err != nil {
			t.Fatalf("netfault: %v", err)
		}
		c.net = nw
	}
	for _, nd := range c.nodeList() {
		c.setPeers(nd)
	}
	return c
}

func (c *cluster) newNode(id nodeID) *node {
	c.t.Helper()
	h, err := c.stores(c.ctx, c.t)
	if err != nil {
		c.t.Fatalf("store harness: %v", err)
	}
	nd := &node{id: id, harness: h, members: map[groupID][]nodeID{},
		grps: map[groupID]consensus.Group{}, sms: map[groupID]*fsm{}}
	c.mu.Lock()
	c.nodes[id] = nd
	c.mu.Unlock()
	return nd
}

// startEngine opens nd's store if it is closed and creates its engine.
func (c *cluster) startEngine(nd *node) {
	c.t.Helper()
	if nd.store == nil {
		st, err := nd.harness.Open(c.ctx)
		if err != nil {
			c.t.Fatalf("node %d: open store: %v", nd.id, err)
		}
		nd.store = st
	}
	eng, err := c.be.Factory.Create(c.ctx, component.Settings{}, c.be.Config(), consensus.Params{
		Node:   nd.id,
		Store:  nd.store,
		Listen: "127.0.0.1:0",
	})
	if err != nil {
		c.t.Fatalf("node %d: create engine: %v", nd.id, err)
	}
	nd.eng = eng
	nd.running = true
}

// peerAddr is the address from uses to reach to.
func (c *cluster) peerAddr(from, to nodeID) string {
	if c.direct {
		return c.node(to).eng.Addr()
	}
	return c.net.Addr(from, to)
}

// setPeers tells nd every other node's address. (Through the network the
// others' addresses for nd are proxies, which stay put when nd restarts.)
func (c *cluster) setPeers(nd *node) {
	c.t.Helper()
	for _, o := range c.nodeList() {
		if o.id == nd.id {
			continue
		}
		if err := nd.eng.SetPeer(c.ctx, o.id, c.peerAddr(nd.id, o.id)); err != nil {
			c.t.Fatalf("node %d: SetPeer(%d): %v", nd.id, o.id, err)
		}
	}
}

// addNode starts a new engine with id and connects it to the others.
func (c *cluster) addNode(id nodeID) *node {
	c.t.Helper()
	nd := c.newNode(id)
	c.startEngine(nd)
	if c.net != nil {
		if err := c.net.AddNode(id, nd.eng.Addr()); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, o := range c.nodeList() {
		if o.id != id && o.running {
			if err := o.eng.SetPeer(c.ctx, id, c.peerAddr(o.id, id)); err != nil {
				c.t.Fatalf("node %d: SetPeer(%d): %v", o.id, id, err)
			}
		}
	}
	c.setPeers(nd)
	return nd
}

func (c *cluster) node(id nodeID) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) nodeList() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := slices.Sorted(maps.Keys(c.nodes))
	out := make([]*node, len(ids))
	for i, id := range ids {
		out[i] = c.nodes[id]
	}
	return out
}

func (c *cluster) ids() []nodeID {
	var ids []nodeID
	for _, nd := range c.nodeList() {
		ids = append(ids, nd.id)
	}
	return ids
}

func (c *cluster) rec(g groupID) *groupRec {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.groups[g]
	if !ok {
		r = newGroupRec(g)
		c.groups[g] = r
	}
	return r
}

// startGroup starts group g on nd with the given initial members.
func (c *cluster) startGroup(nd *node, g groupID, members []nodeID) consensus.Group {
	c.t.Helper()
	grp, err := c.tryStartGroup(nd, g, members)
	if err != nil {
		c.t.Fatalf("node %d: StartGroup(%d): %v", nd.id, g, err)
	}
	return grp
}

func (c *cluster) tryStartGroup(nd *node, g groupID, members []nodeID) (consensus.Group, error) {
	sm := newFSM(c.rec(g), nd.id)
	grp, err := nd.eng.StartGroup(c.ctx, consensus.GroupSpec{ID: g, Members: members, StateMachine: sm})
	if err != nil {
		return nil, err
	}
	if grp.ID() != g {
		c.rec(g).violate("node %d: StartGroup returned group %d", nd.id, grp.ID())
	}
	c.mu.Lock()
	nd.members[g] = members
	nd.grps[g] = grp
	nd.sms[g] = sm
	c.mu.Unlock()
	return grp, nil
}

// startGroupAll starts g on every node with all of them as members.
func (c *cluster) startGroupAll(g groupID) {
	c.t.Helper()
	ids := c.ids()
	for _, nd := range c.nodeList() {
		c.startGroup(nd, g, ids)
	}
}

// group returns nd's running group g, or nil.
func (c *cluster) group(id nodeID, g groupID) consensus.Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[id]
	if nd == nil || !nd.running {
		return nil
	}
	return nd.grps[g]
}

func (c *cluster) sm(id nodeID, g groupID) *fsm {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd := c.nodes[id]; nd != nil {
		return nd.sms[g]
	}
	return nil
}

// stopNode shuts nd's engine down and, for a persistent store, closes the
// store (a restart then reopens it from its files).
func (c *cluster) stopNode(id nodeID) {
	c.t.Helper()
	nd := c.node(id)
	if err := c.shutdown(nd); err != nil {
		c.t.Fatalf("node %d: Shutdown: %v", id, err)
	}
	if c.caps.PersistentStore {
		if err := nd.store.Close(); err != nil {
			c.t.Fatalf("node %d: close store: %v", id, err)
		}
		nd.store = nil
	}
}

func (c *cluster) shutdown(nd *node) error {
	if !nd.running {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opTimeout())
	defer cancel()
	err := nd.eng.Shutdown(ctx)
	c.mu.Lock()
	nd.running = false
	for _, sm := range nd.sms {
		sm.close()
	}
	c.mu.Unlock()
	return err
}

// restartNode starts nd again from its store, with the groups it ran.
func (c *cluster) restartNode(id nodeID) {
	c.t.Helper()
	nd := c.node(id)
	c.startEngine(nd)
	if c.net != nil {
		c.net.SetTarget(id, nd.eng.Addr())
	}
	c.setPeers(nd)
	for _, g := range slices.Sorted(maps.Keys(nd.members)) {
		c.startGroup(nd, g, nd.members[g])
	}
}

// teardown heals the network, stops every engine, closes the stores and
// the network, reports contract breaches and leaked goroutines.
func (c *cluster) teardown() {
	if c.net != nil {
		c.net.HealAll()
	}
	var wg sync.WaitGroup
	for _, nd := range c.nodeList() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.shutdown(nd); err != nil {
				c.t.Errorf("node %d: Shutdown: %v", nd.id, err)
			}
		}()
	}
	wg.Wait()
	for _, nd := range c.nodeList() {
		if nd.store != nil {
			if err := nd.store.Close(); err != nil {
				c.t.Errorf("node %d: close store: %v", nd.id, err)
			}
		}
		nd.harness.Close()
	}
	if c.net != nil {
		if err := c.net.Close(); err != nil {
			c.t.Errorf("netfault: close: %v", err)
		}
	}
	c.checkViolations()
	if err := goleak.Find(c.leaks); err != nil {
		c.t.Errorf("goroutines left after the cluster was shut down: %v", err)
	}
}

// checkViolations fails the test for every breach recorded so far.
func (c *cluster) checkViolations() {
	c.t.Helper()
	c.mu.Lock()
	recs := slices.Collect(maps.Values(c.groups))
	c.mu.Unlock()
	for _, r := range recs {
		for _, v := range r.takeViolations() {
			c.t.Errorf("contract breach: %s", v)
		}
	}
}

// Timeouts, all derived from the backend's election timeout.

// electBound is the liveness bound for electing a leader.
func (c *cluster) electBound() time.Duration { return 20 * c.be.ElectionTimeout }

// opTimeout bounds one operation (Propose, transfer, membership change)
// and waits for replication: generous, it only turns a hang into a failure.
func (c *cluster) opTimeout() time.Duration { return max(50*c.be.ElectionTimeout, 30*time.Second) }

func (c *cluster) pollEvery() time.Duration {
	return min(max(c.be.ElectionTimeout/20, 2*time.Millisecond), 20*time.Millisecond)
}

// observe polls Status of every running group on every node and records
// what it says; it also checks that applied sequences are prefixes of each
// other (committed prefixes agree).
func (c *cluster) observe(gs ...groupID) {
	for _, nd := range c.nodeList() {
		c.mu.Lock()
		running := nd.running
		grps := maps.Clone(nd.grps)
		c.mu.Unlock()
		if !running {
			continue
		}
		for g, grp := range grps {
			if len(gs) > 0 && !slices.Contains(gs, g) {
				continue
			}
			st := grp.Status()
			r := c.rec(g)
			if st.Group != g || st.Node != nd.id {
				r.violate("node %d: Status names group %d node %d", nd.id, st.Group, st.Node)
			}
			if st.Applied > st.Commit && st.Commit != 0 {
				r.violate("node %d: Status applied %d above commit %d", nd.id, st.Applied, st.Commit)
			}
			r.observeStatus(nd.id, st)
			if grp.Leading(st.Term) {
				r.observe(nd.id, nd.id, st.Term, "Leading")
			}
			if grp.Leading(0) {
				r.violate("node %d: Leading(0) is true", nd.id)
			}
		}
	}
	for _, g := range gs {
		c.checkPrefixes(g)
	}
}

// checkPrefixes records a breach if two replicas applied different entries
// at the same position.
func (c *cluster) checkPrefixes(g groupID) {
	type seq struct {
		id nodeID
		st []record
	}
	var seqs []seq
	for _, nd := range c.nodeList() {
		if sm := c.sm(nd.id, g); sm != nil {
			seqs = append(seqs, seq{nd.id, sm.snapshot()})
		}
	}
	for i := 1; i < len(seqs); i++ {
		if d := firstDiff(seqs[0].st, seqs[i].st); d >= 0 {
			c.rec(g).violate("replicas %d and %d differ at applied position %d: %s vs %s",
				seqs[0].id, seqs[i].id, d, at(seqs[0].st, d), at(seqs[i].st, d))
		}
	}
}

// firstDiff is the first position where a and b hold different records
// within their common length, or -1.
func firstDiff(a, b []record) int {
	for i := range min(len(a), len(b)) {
		if a[i].Index != b[i].Index || !bytes.Equal(a[i].Data, b[i].Data) {
			return i
		}
	}
	return -1
}

func at(st []record, i int) string {
	if i >= len(st) {
		return "nothing"
	}
	return fmt.Sprintf("%d:%q", st[i].Index, st[i].Data)
}

// eventually polls cond until it holds or d passes; it observes the given
// groups at every poll. On timeout it fails the test with cond's last
// explanation.
func (c *cluster) eventually(d time.Duration, what string, gs []groupID, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(c.pollEvery())
	defer tick.Stop()
	for {
		c.observe(gs...)
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.checkViolations()
			c.t.Fatalf("%s: not within %v: %s", what, d, why)
		}
		<-tick.C
	}
}

// waitLeader waits until one of ids leads g and every other node of ids
// names it, at the same term. It returns the leader and term.
func (c *cluster) waitLeader(g groupID, ids []nodeID, bound time.Duration) (nodeID, uint64) {
	c.t.Helper()
	var leader nodeID
	var term uint64
	c.eventually(bound, fmt.Sprintf("group %d: leader among %v", g, ids), []groupID{g}, func() (bool, string) {
		leader, term = 0, 0
		var views []string
		for _, id := range ids {
			grp := c.group(id, g)
			if grp == nil {
				return false, fmt.Sprintf("node %d not running", id)
			}
			st := grp.Status()
			views = append(views, fmt.Sprintf("%d:%s/t%d/l%d", id, st.Role, st.Term, st.Leader))
			if st.Role == consensus.RoleLeader {
				leader, term = id, st.Term
			}
		}
		if leader == 0 {
			return false, "no leader: " + strings.Join(views, " ")
		}
		for _, id := range ids {
			st := c.group(id, g).Status()
			if st.Term != term || (id != leader && st.Leader != leader) {
				return false, "no agreement: " + strings.Join(views, " ")
			}
		}
		return true, ""
	})
	return leader, term
}

// propose proposes data through the leader of g (see tryPropose) and
// fails the test if that does not succeed.
func (c *cluster) propose(g groupID, data string) uint64 {
	c.t.Helper()
	idx, err := c.tryPropose(g, data)
	if err != nil {
		c.t.Fatal(err)
	}
	return idx
}

// tryPropose proposes data on the node that leads g (following NotLeader
// hints, retrying dropped proposals) and records it as acknowledged. A
// proposal whose outcome is unknown is retried with a new payload, so that
// every payload appears at most once in the log. Safe to call from several
// goroutines.
func (c *cluster) tryPropose(g groupID, data string) (uint64, error) {
	deadline := time.Now().Add(c.opTimeout())
	var target nodeID
	var lastErr error
	payload := data
	for attempt := 0; ; attempt++ {
		if target == 0 || c.group(target, g) == nil {
			target = c.anyLeader(g)
		}
		if grp := c.group(target, g); grp != nil {
			ctx, cancel := context.WithTimeout(c.ctx, max(10*c.be.ElectionTimeout, 2*time.Second))
			idx, err := grp.Propose(ctx, []byte(payload))
			cancel()
			if err == nil {
				c.rec(g).ack(idx, []byte(payload))
				return idx, nil
			}
			lastErr = fmt.Errorf("Propose(%q) on node %d: %w", payload, target, err)
			switch consensus.CodeOf(err) {
			case consensus.CodeNotLeader:
				target = consensus.LeaderHint(err)
			case consensus.CodeDropped:
				// Never committed: the same payload may be proposed again.
			default:
				target = 0
				payload = fmt.Sprintf("%s#retry%d", data, attempt)
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("group %d: no proposal acknowledged within %v; last: %v", g, c.opTimeout(), lastErr)
		}
		time.Sleep(c.pollEvery())
	}
}

func contextWithTimeout(c *cluster, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, d)
}

// anyLeader returns a running node whose Status says it leads g, or 0.
func (c *cluster) anyLeader(g groupID) nodeID {
	var best nodeID
	var bestTerm uint64
	for _, nd := range c.nodeList() {
		if grp := c.group(nd.id, g); grp != nil {
			if st := grp.Status(); st.Role == consensus.RoleLeader && st.Term >= bestTerm {
				best, bestTerm = nd.id, st.Term
			}
		}
	}
	return best
}

// proposeN proposes n payloads named after prefix.
func (c *cluster) proposeN(g groupID, prefix string, n int) {
	c.t.Helper()
	for i := range n {
		c.propose(g, fmt.Sprintf("g%d/%s/%d", g, prefix, i))
	}
}

// waitConverged waits until every node of ids has applied the same
// sequence for g, holding every acknowledged proposal at its index, and
// checks that each appears once and is stored verbatim in the node's log.
func (c *cluster) waitConverged(g groupID, ids []nodeID) []record {
	c.t.Helper()
	var final []record
	c.eventually(c.opTimeout(), fmt.Sprintf("group %d: replicas %v converge", g, ids), []groupID{g}, func() (bool, string) {
		acked := c.rec(g).ackedCopy()
		var ref []record
		for i, id := range ids {
			sm := c.sm(id, g)
			if sm == nil || c.group(id, g) == nil {
				return false, fmt.Sprintf("node %d does not run group %d", id, g)
			}
			st := sm.snapshot()
			if why := missingAcked(st, acked); why != "" {
				return false, fmt.Sprintf("node %d: %s", id, why)
			}
			if i == 0 {
				ref = st
				continue
			}
			if len(st) != len(ref) || firstDiff(st, ref) >= 0 {
				return false, fmt.Sprintf("node %d applied %d entries, node %d %d (first difference at %d)",
					ids[0], len(ref), id, len(st), firstDiff(st, ref))
			}
		}
		final = ref
		return true, ""
	})
	seen := map[string]uint64{}
	for _, r := range final {
		if prev, dup := seen[string(r.Data)]; dup {
			c.rec(g).violate("payload %q applied twice, at %d and %d", r.Data, prev, r.Index)
		}
		seen[string(r.Data)] = r.Index
	}
	for _, id := range ids {
		c.checkStored(id, g, final)
	}
	c.checkViolations()
	return final
}

// missingAcked explains which acknowledged proposal st lacks, or "".
func missingAcked(st []record, acked map[uint64][]byte) string {
	byIndex := make(map[uint64][]byte, len(st))
	for _, r := range st {
		byIndex[r.Index] = r.Data
	}
	for idx, data := range acked {
		got, ok := byIndex[idx]
		if !ok {
			return fmt.Sprintf("acknowledged index %d (%q) not applied", idx, data)
		}
		if !bytes.Equal(got, data) {
			return fmt.Sprintf("acknowledged index %d holds %q, applied %q", idx, data, got)
		}
	}
	return ""
}

// checkStored checks that every applied entry still in nd's log is there
// verbatim, as a KindNormal entry at its index.
func (c *cluster) checkStored(id nodeID, g groupID, st []record) {
	nd := c.node(id)
	if nd.store == nil {
		return
	}
	lg, err := nd.store.Log(g)
	if err != nil {
		c.rec(g).violate("node %d: store.Log: %v", id, err)
		return
	}
	first, err1 := lg.FirstIndex()
	last, err2 := lg.LastIndex()
	if err := errors.Join(err1, err2); err != nil {
		c.rec(g).violate("node %d: log bounds: %v", id, err)
		return
	}
	for _, r := range st {
		if r.Index < first || r.Index > last {
			continue
		}
		es, err := lg.Entries(r.Index, r.Index+1, 0)
		if err != nil {
			if storage.CodeOf(err) == storage.CodeCompacted {
				continue // compacted since FirstIndex was read
			}
			c.rec(g).violate("node %d: log entry %d: %v", id, r.Index, err)
			return
		}
		if len(es) != 1 || es[0].Kind != storage.KindNormal || !bytes.Equal(es[0].Data, r.Data) {
			c.rec(g).violate("node %d: log entry %d is %+v, want KindNormal %q", id, r.Index, es, r.Data)
			return
		}
	}
}
