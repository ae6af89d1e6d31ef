package hashicorp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// proposal is a Propose call waiting for its entry to be applied here.
type proposal struct {
	done  chan struct{} // closed once index or err is set
	index uint64
	err   error
}

type leaderEvent struct {
	leader consensus.NodeID
	term   uint64
}

// group is one Raft group on this node: a raft.Raft with its views of the
// shared store and transport.
type group struct {
	e     *Engine
	id    storage.GroupID
	sm    consensus.StateMachine
	r     *raft.Raft
	st    *store
	vt    *vtrans
	ctx   context.Context // for state machine calls; canceled by stop
	stopC chan struct{}   // closed by stop
	doneC chan struct{}   // closed once stop finished
	wg    sync.WaitGroup  // serve and delivery goroutines

	applied   atomic.Uint64
	applyWake wakeup // notified on every apply, for ReadBarrier calls waiting for an index
	// readRounds counts ReadBarrier rounds (see read.go).
	readRounds atomic.Uint64

	smMu     sync.Mutex // held around every state machine call
	smClosed bool
	smFailed bool
	cancel   context.CancelFunc

	// mu guards this node's view of the group, kept in step with the
	// library by its observations (leader, state) and by the StableStore
	// (term), so that leader and term always go together.
	mu           sync.Mutex
	state        raft.RaftState
	leader       consensus.NodeID
	term         uint64
	changed      chan struct{} // closed and replaced on every change of the view
	props        map[uint64]*proposal
	events       []leaderEvent
	delivering   bool
	transferring bool
	stopped      bool
	failed       error
	// ReadBarrier rounds: the running one, and the one gathering callers.
	readCur, readNext *readRound
	// leadStart is the first index of the term leadStartTerm in which this
	// node became leader: the library appends a no-op there first.
	leadStart, leadStartTerm uint64
}

var _ consensus.Group = (*group)(nil)

func (g *group) ID() storage.GroupID { return g.id }

// observe is the library's observer filter: it runs synchronously in the
// goroutine that changed the library's state.
func (g *group) observe(o *raft.Observation) bool {
	switch d := o.Data.(type) {
	case raft.LeaderObservation:
		var n consensus.NodeID
		if d.LeaderID != "" {
			n, _ = nodeOf(raft.ServerAddress(d.LeaderID))
		}
		g.mu.Lock()
		if n != g.leader {
			g.leader = n
			g.noteLocked()
		}
		g.mu.Unlock()
	case raft.RaftState:
		g.mu.Lock()
		if d != g.state {
			g.state = d
			if d != raft.Leader {
				g.sweepLocked()
			} else {
				// The library calls observers from its main goroutine
				// before its leader loop appends the term's no-op.
				g.leadStart, g.leadStartTerm = g.r.LastIndex()+1, g.r.CurrentTerm()
			}
			g.signalLocked()
		}
		g.mu.Unlock()
	}
	return false
}

// onTerm runs when the library persists a new current term: the leader
// of the new term is not known yet.
func (g *group) onTerm(term uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if term == g.term {
		return
	}
	g.term, g.leader = term, 0
	g.sweepLocked()
	g.noteLocked()
}

func (g *group) signalLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// noteLocked records a change of leader or term for LeaderChanged.
func (g *group) noteLocked() {
	g.signalLocked()
	g.events = append(g.events, leaderEvent{g.leader, g.term})
	if g.delivering || g.stopped {
		return
	}
	g.delivering = true
	g.wg.Go(g.deliver)
}

// deliver calls LeaderChanged for the recorded changes, in order; one
// delivery goroutine runs per group at a time.
func (g *group) deliver() {
	for {
		g.mu.Lock()
		evs := g.events
		g.events = nil
		if len(evs) == 0 || g.stopped {
			g.delivering = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.smMu.Lock()
		if !g.smClosed {
			for _, ev := range evs {
				g.sm.LeaderChanged(g.ctx, ev.leader, ev.term)
			}
		}
		g.smMu.Unlock()
	}
}

// sweepLocked fails the pending proposals: this node stopped leading, so
// it will not see them applied with its token. They may still commit.
func (g *group) sweepLocked() {
	for tok, p := range g.props {
		delete(g.props, tok)
		p.err = &consensus.Error{Code: consensus.CodeTimeout, Leader: 0,
			Msg: "leadership lost before the entry was applied here; outcome unknown"}
		close(p.done)
	}
}

// fail stops the group after its state machine failed.
func (g *group) fail(err error) {
	g.mu.Lock()
	if g.failed == nil {
		g.failed = err
	}
	g.mu.Unlock()
	g.e.log.Error("hashicorp: state machine failed; stopping the group", "group", uint64(g.id), "err", err)
	g.e.wg.Go(func() { _ = g.stop(context.Background()) })
}

func ctxErr(ctx context.Context) error {
	return &consensus.Error{Code: consensus.CodeTimeout, Msg: "outcome unknown: " + ctx.Err().Error(), Err: ctx.Err()}
}

// Propose replicates data and returns its index once it is committed and
// applied here. Empty data is refused: it could not be told from a no-op.
func (g *group) Propose(ctx context.Context, data []byte) (uint64, error) {
	if len(data) == 0 {
		return 0, consensus.Errorf(consensus.CodeInvalid, "empty proposal")
	}
	if ctx.Err() != nil {
		return 0, ctxErr(ctx)
	}
	g.mu.Lock()
	switch {
	case g.stopped:
		g.mu.Unlock()
		return 0, consensus.ErrStopped
	case g.failed != nil:
		err := g.failed
		g.mu.Unlock()
		return 0, consensus.Errorf(consensus.CodeInternal, "group %d: state machine failed: %w", g.id, err)
	case g.state != raft.Leader:
		l := g.leader
		g.mu.Unlock()
		return 0, consensus.NotLeader(l)
	case g.transferring:
		g.mu.Unlock()
		return 0, consensus.Errorf(consensus.CodeDropped, "group %d: leadership transfer in progress", g.id)
	}
	tok := g.e.tok.Add(1)
	p := &proposal{done: make(chan struct{})}
	g.props[tok] = p
	g.mu.Unlock()

	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	// The future is not waited for: the proposal completes when the FSM
	// applies its token, or fails when leadership is lost (see observe).
	g.r.ApplyLog(raft.Log{Data: slices.Clone(data), Extensions: binary.BigEndian.AppendUint64(nil, tok)}, timeout)
	select {
	case <-p.done:
		return p.index, p.err
	case <-ctx.Done():
	case <-g.stopC:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-p.done:
		return p.index, p.err
	default:
	}
	delete(g.props, tok)
	if g.stopped {
		return 0, consensus.ErrStopped
	}
	return 0, ctxErr(ctx)
}

// Status is this node's current view of the group.
func (g *group) Status() consensus.Status {
	applied := g.applied.Load()
	g.mu.Lock()
	st := consensus.Status{Group: g.id, Node: g.e.node, Term: g.term, Leader: g.leader, Applied: applied}
	state := g.state
	g.mu.Unlock()
	st.Commit = max(g.r.CommitIndex(), applied)
	self := raft.ServerID(addr(g.e.node))
	learner := false
	for _, s := range g.r.GetConfiguration().Configuration().Servers {
		n, err := nodeOf(raft.ServerAddress(s.ID))
		if err != nil {
			continue
		}
		if s.Suffrage == raft.Voter {
			st.Voters = append(st.Voters, n)
		} else {
			st.Learners = append(st.Learners, n)
			learner = learner || s.ID == self
		}
	}
	switch state {
	case raft.Leader:
		st.Role = consensus.RoleLeader
	case raft.Candidate:
		st.Role = consensus.RoleCandidate
	default:
		st.Role = consensus.RoleFollower
		if learner {
			st.Role = consensus.RoleLearner
		}
	}
	return st
}

// Leading reads the library's own state and term (atomics it sets in its
// main goroutine before it answers the request that made it step down),
// not g.state/g.term: term, state, term again, so that a state read
// between two equal terms belongs to that term (within a term a node leads
// at most once).
func (g *group) Leading(term uint64) bool {
	if term == 0 || g.r.CurrentTerm() != term {
		return false
	}
	return g.r.State() == raft.Leader && g.r.CurrentTerm() == term
}

func (g *group) view() (leader consensus.NodeID, state raft.RaftState, changed chan struct{}, stopped bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leader, g.state, g.changed, g.stopped
}

// mapErr turns a library error into a consensus error.
func (g *group) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		l, _, _, _ := g.view()
		return consensus.NotLeader(l)
	case errors.Is(err, raft.ErrRaftShutdown):
		return consensus.ErrStopped
	case errors.Is(err, raft.ErrLeadershipLost):
		return &consensus.Error{Code: consensus.CodeTimeout, Msg: "leadership lost; outcome unknown", Err: err}
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return &consensus.Error{Code: consensus.CodeTimeout, Msg: "not enqueued in time", Err: err}
	}
	var ce *consensus.Error
	if errors.As(err, &ce) {
		return err
	}
	return consensus.Errorf(consensus.CodeInternal, "group %d: %w", g.id, err)
}

// waitFuture waits for f, ctx or the group's stop. (The library offers no
// channel: a goroutine waits on the future and ends when it completes,
// which the library guarantees for these futures.)
func (g *group) waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return g.mapErr(err)
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-g.stopC:
		return consensus.ErrStopped
	}
}

// TransferLeadership hands leadership to node to and waits until to leads,
// trying again while this node still leads. The hand-over is done here
// (handOver), not by the library's LeadershipTransfer: see handOver.
func (g *group) TransferLeadership(ctx context.Context, to consensus.NodeID) error {
	if to == 0 {
		return consensus.Errorf(consensus.CodeInvalid, "transfer to node 0")
	}
	requested := false
	for {
		leader, state, changed, stopped := g.view()
		switch {
		case stopped:
			return consensus.ErrStopped
		case leader == to:
			return nil
		case state == raft.Leader:
			if !slices.Contains(g.Status().Voters, to) {
				return consensus.Errorf(consensus.CodeInvalid, "node %d is not a voter of group %d", to, g.id)
			}
			err := g.handOver(ctx, to)
			switch consensus.CodeOf(err) {
			case consensus.CodeOK, consensus.CodeTimeout, consensus.CodeNotLeader:
				// Sent, or not yet possible: wait for a change below and
				// check again.
			default:
				return err
			}
			if ctx.Err() != nil {
				return ctxErr(ctx)
			}
			requested = true
		case requested && leader == 0:
			// The election the transfer started is under way.
		default:
			return consensus.NotLeader(leader)
		}
		timer := time.NewTimer(2 * g.e.cfg.ElectionTimeout)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctxErr(ctx)
		case <-changed:
		case <-timer.C:
		case <-g.stopC:
		}
		timer.Stop()
	}
}

// handOver does what the library's leadership transfer does, in two
// steps. First, still taking proposals, it waits (up to twice the election
// timeout) until node to has accepted appends up to the commit index, as
// successful appends at this term show: a target that is down or cut off
// fails here without holding up writes. Then it refuses proposals
// (transferring) and waits (up to an election timeout) until to matches
// this leader's last index, and sends it TimeoutNow, which makes it
// campaign at once with a vote request the other voters grant although
// they have a leader.
//
// The library's own LeadershipTransfer is not used: in hashicorp/raft
// v1.8.0 a transfer started while an earlier one's catch-up request still
// waits in the follower's replication channel blocks on that channel, and
// if this node then steps down (the replication goroutine exits) it blocks
// for good, leaving the library's "transfer in progress" flag set: from
// then on, in every later term this node leads, the library refuses every
// Apply, so the group is led but can commit nothing
// (hashicorp/raft#696). Chaos runs found it: the broker's balancer retries
// transfers to a preferred replica that a fault made unreachable. While
// that flag is set, even briefly, the library also refuses Applies, which
// a catch-up to a dead target stretched to its RPC timeout.
func (g *group) handOver(ctx context.Context, to consensus.NodeID) error {
	term := g.r.CurrentTerm()
	target := addr(to)
	caughtUp := func(final bool) error {
		limit := 2 * g.e.cfg.ElectionTimeout
		if final {
			limit = g.e.cfg.ElectionTimeout
		}
		deadline := time.NewTimer(limit)
		defer deadline.Stop()
		tick := time.NewTicker(max(g.e.cfg.CommitTimeout, time.Millisecond))
		defer tick.Stop()
		for {
			if !g.Leading(term) {
				return g.notLeader()
			}
			ackC := g.vt.acks.wait()
			want := g.r.CommitIndex()
			if final {
				want = g.r.LastIndex()
			}
			if g.vt.match.at(target, term) >= want {
				return nil
			}
			select {
			case <-ackC:
			case <-tick.C:
			case <-deadline.C:
				return &consensus.Error{Code: consensus.CodeTimeout,
					Msg: fmt.Sprintf("group %d: node %d did not catch up within %v", g.id, to, limit)}
			case <-ctx.Done():
				return ctxErr(ctx)
			case <-g.stopC:
				return consensus.ErrStopped
			}
		}
	}
	if err := caughtUp(false); err != nil {
		return err
	}
	g.setTransferring(true)
	defer g.setTransferring(false)
	if err := caughtUp(true); err != nil {
		return err
	}
	self := []byte(addr(g.e.node))
	req := &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: self, Addr: self}}
	var resp raft.TimeoutNowResponse
	if err := roundTrip(g.vt, target, msgTimeoutNow, req, &resp, g.e.cfg.RPCTimeout); err != nil {
		return &consensus.Error{Code: consensus.CodeTimeout, Msg: fmt.Sprintf("group %d: TimeoutNow to node %d", g.id, to), Err: err}
	}
	return nil
}

func (g *group) setTransferring(v bool) {
	g.mu.Lock()
	g.transferring = v
	g.mu.Unlock()
}

// ChangeMembership commits a membership change through the library.
func (g *group) ChangeMembership(ctx context.Context, c consensus.MembershipChange) error {
	if c.Node == 0 {
		return consensus.Errorf(consensus.CodeInvalid, "membership change of node 0")
	}
	leader, state, _, stopped := g.view()
	if stopped {
		return consensus.ErrStopped
	}
	if state != raft.Leader {
		return consensus.NotLeader(leader)
	}
	id, a := raft.ServerID(addr(c.Node)), addr(c.Node)
	var f raft.IndexFuture
	switch c.Type {
	case consensus.AddVoter:
		f = g.r.AddVoter(id, a, 0, 0)
	case consensus.AddLearner:
		f = g.r.AddNonvoter(id, a, 0, 0)
	case consensus.RemoveNode:
		f = g.r.RemoveServer(id, 0, 0)
	default:
		return consensus.Errorf(consensus.CodeInvalid, "unknown membership change %d", c.Type)
	}
	return g.waitFuture(ctx, f)
}

// Compact has the library take a snapshot (the state machine's, at some
// index S, plus the log up to the library's applied index L) and then drops
// the log below S+1. When nothing was applied since the last snapshot, the
// state machine's snapshot is taken again and replaces the one in the
// latest snapshot (same L).
func (g *group) Compact(ctx context.Context) error {
	if _, _, _, stopped := g.view(); stopped {
		return consensus.ErrStopped
	}
	err := g.waitFuture(ctx, g.r.Snapshot())
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		err = g.resnapshot()
	}
	if err != nil {
		return err
	}
	s := g.st
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.snap == nil {
		return nil
	}
	first, err := s.log.FirstIndex()
	if err != nil {
		return consensus.Errorf(consensus.CodeStorage, "group %d: %w", g.id, err)
	}
	if to := s.state.snap.smIndex + 1; to > first {
		if err := s.w.write(storage.GroupWrite{Group: g.id, TruncBefore: to}); err != nil {
			return consensus.Errorf(consensus.CodeStorage, "group %d: drop log below %d: %w", g.id, to, err)
		}
	}
	return nil
}

// resnapshot replaces the state machine's part of the latest snapshot.
func (g *group) resnapshot() error {
	s := g.st
	s.mu.Lock()
	has := s.state.snap != nil
	s.mu.Unlock()
	if !has {
		return nil
	}
	g.smMu.Lock()
	if g.smClosed {
		g.smMu.Unlock()
		return consensus.ErrStopped
	}
	cs, err := g.sm.Snapshot(g.ctx)
	g.smMu.Unlock()
	if err != nil {
		return consensus.Errorf(consensus.CodeInternal, "group %d: snapshot: %w", g.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.snap
	if cs.Index > old.index || cs.Index < old.smIndex {
		return nil // not expressible against this snapshot; keep it
	}
	term, err := s.log.Term(cs.Index)
	if err != nil {
		return consensus.Errorf(consensus.CodeStorage, "group %d: term of %d: %w", g.id, cs.Index, err)
	}
	rec := *old
	rec.smIndex, rec.smTerm, rec.smData = cs.Index, term, slices.Clone(cs.Data)
	s.state.snap = &rec
	if err := s.writeStateLocked(); err != nil {
		s.state.snap = old
		return consensus.Errorf(consensus.CodeStorage, "%w", err)
	}
	return nil
}

// stop stops the library and the group's goroutines; pending calls get
// ErrStopped. The state machine is not called once stop returns.
func (g *group) stop(ctx context.Context) error {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		select {
		case <-g.doneC:
			return nil
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
	g.stopped = true
	for tok, p := range g.props {
		delete(g.props, tok)
		p.err = consensus.ErrStopped
		close(p.done)
	}
	g.mu.Unlock()
	close(g.stopC)
	g.cancel()
	err := g.r.Shutdown().Error()
	g.wg.Wait()
	g.smMu.Lock()
	g.smClosed = true
	g.smMu.Unlock()
	g.e.removeGroup(g)
	close(g.doneC)
	if err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
		return consensus.Errorf(consensus.CodeInternal, "group %d: shutdown: %w", g.id, err)
	}
	return nil
}
