package etcd

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// proposal is a Propose or ChangeMembership call waiting for its entry.
type proposal struct {
	data  []byte         // a proposal's data
	cc    *pb.ConfChange // or a membership change
	index uint64         // set once appended (worker only)
	term  uint64         // idem
	done  chan struct{}  // closed when index/err are final
	err   error
}

func (p *proposal) finish(err error) {
	p.err = err
	close(p.done)
}

// compaction is a Compact call.
type compaction struct {
	ctx  context.Context
	done chan error // buffered
}

type snapReport struct {
	to     uint64
	status raft.SnapshotStatus
}

// inbox is the work other goroutines hand to a group; the worker holding
// the group drains it.
type inbox struct {
	tick        bool
	wake        bool // leave quiescence (the leader's node went quiet)
	msgs        []*pb.Message
	props       []*proposal
	transfers   []uint64
	compacts    []*compaction
	reads       []*readReq
	unreachable []uint64
	snaps       []snapReport
	stop        bool
	stopErr     error
}

// group is one Raft group on this node. Fields under "worker" are touched
// only by the worker holding the group (see scheduler) and by StartGroup
// before the group is first scheduled.
type group struct {
	e     *Engine
	id    storage.GroupID
	sm    consensus.StateMachine
	sched schedState // guarded by e.sched.mu

	quiesced atomic.Bool   // no ticks while set
	qLeader  atomic.Uint64 // the leader a quiesced follower trusts
	// qLagging are the followers a leader quiesced without: behind, and
	// not heard from. The ticker wakes the leader when one is heard again,
	// so that it catches up (it may be quiesced too and never ask).
	qLagging atomic.Pointer[[]uint64]
	// leadTerm is the term this node leads at as the RawNode has it (0:
	// it does not lead), for Leading. The worker stores it after stepping
	// the inbox, before the round sends anything (see publishLead).
	leadTerm atomic.Uint64
	// readRounds counts the ReadIndex requests issued (see read.go).
	readRounds atomic.Uint64

	mu       sync.Mutex
	in       inbox
	status   consensus.Status
	changed  chan struct{} // closed and replaced when leader, term or role change
	stopped  bool
	stoppedC chan struct{} // closed once the worker let go of the group for good

	// worker
	rn       *raft.RawNode
	rs       *raftStorage
	hs       *pb.HardState // last persisted
	confs    []confAt      // conf states from the snapshot on, by index
	pending  map[uint64]*proposal
	applied  uint64
	reported struct{ lead, term uint64 }
	reads    reads
}

// confAt is the conf state in force from index on.
type confAt struct {
	index uint64
	cs    *pb.ConfState
}

var _ consensus.Group = (*group)(nil)

func (g *group) ID() storage.GroupID { return g.id }

// post adds work under the inbox lock and schedules the group.
func (g *group) post(f func(in *inbox)) error {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return consensus.ErrStopped
	}
	f(&g.in)
	g.mu.Unlock()
	g.e.sched.enqueue(g)
	return nil
}

// wait waits for p, ctx or the group's stop.
func (g *group) wait(ctx context.Context, p *proposal) (uint64, error) {
	select {
	case <-p.done:
		return p.index, p.err
	case <-ctx.Done():
		return 0, ctxErr(ctx)
	case <-g.stoppedC:
		select {
		case <-p.done:
			return p.index, p.err
		default:
		}
		return 0, consensus.ErrStopped
	}
}

func ctxErr(ctx context.Context) error {
	return &consensus.Error{Code: consensus.CodeTimeout, Msg: "outcome unknown: " + ctx.Err().Error(), Err: ctx.Err()}
}

// Propose replicates data and returns its index once it is committed and
// applied here. Empty data is refused: it could not be told from a leader's
// no-op entry.
func (g *group) Propose(ctx context.Context, data []byte) (uint64, error) {
	if len(data) == 0 {
		return 0, consensus.Errorf(consensus.CodeInvalid, "empty proposal")
	}
	if err := ctx.Err(); err != nil {
		return 0, ctxErr(ctx)
	}
	p := &proposal{data: slices.Clone(data), done: make(chan struct{})}
	if err := g.post(func(in *inbox) { in.props = append(in.props, p) }); err != nil {
		return 0, err
	}
	return g.wait(ctx, p)
}

// Status is this node's current view of the group.
func (g *group) Status() consensus.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.status
	s.Voters = slices.Clone(s.Voters)
	s.Learners = slices.Clone(s.Learners)
	return s
}

// Leading reports whether the RawNode leads at term, as of the worker's
// last step: a step-down is visible here before the round that made it
// sends its vote or acknowledgement. Status, published at the end of the
// round, may still say leader for a while (an apply in between).
func (g *group) Leading(term uint64) bool {
	return term != 0 && g.leadTerm.Load() == term
}

// publishLead records, for Leading, the role and term in bs. Only the
// worker holding the group calls it.
func (g *group) publishLead(bs *raft.BasicStatus) {
	var t uint64
	if bs.RaftState == raft.StateLeader {
		t = bs.GetTerm()
	}
	g.leadTerm.Store(t)
}

func (g *group) statusAndChan() (consensus.Status, chan struct{}, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status, g.changed, g.stopped
}

// TransferLeadership asks raft to hand leadership to node to and waits until
// to leads. The request is repeated every election timeout while this node
// still leads (raft abandons a transfer that takes longer).
func (g *group) TransferLeadership(ctx context.Context, to consensus.NodeID) error {
	if to == 0 {
		return consensus.Errorf(consensus.CodeInvalid, "transfer to node 0")
	}
	requested := false
	for {
		st, changed, stopped := g.statusAndChan()
		switch {
		case stopped:
			return consensus.ErrStopped
		case st.Leader == to:
			return nil
		case st.Role == consensus.RoleLeader:
			if !slices.Contains(st.Voters, to) {
				return consensus.Errorf(consensus.CodeInvalid, "node %d is not a voter of group %d", to, g.id)
			}
			if err := g.post(func(in *inbox) { in.transfers = append(in.transfers, uint64(to)) }); err != nil {
				return err
			}
			requested = true
		case requested && st.Leader == 0:
			// The election the transfer started is under way.
		default:
			return consensus.NotLeader(st.Leader)
		}
		timer := time.NewTimer(2 * g.e.cfg.electionTimeout())
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctxErr(ctx)
		case <-changed:
		case <-timer.C:
		case <-g.stoppedC:
		}
		timer.Stop()
	}
}

// ChangeMembership commits one membership change (a raft ConfChange).
func (g *group) ChangeMembership(ctx context.Context, c consensus.MembershipChange) error {
	var t pb.ConfChangeType
	switch c.Type {
	case consensus.AddVoter:
		t = pb.ConfChangeType_ConfChangeAddNode
	case consensus.AddLearner:
		t = pb.ConfChangeType_ConfChangeAddLearnerNode
	case consensus.RemoveNode:
		t = pb.ConfChangeType_ConfChangeRemoveNode
	default:
		return consensus.Errorf(consensus.CodeInvalid, "unknown membership change %d", c.Type)
	}
	if c.Node == 0 {
		return consensus.Errorf(consensus.CodeInvalid, "membership change of node 0")
	}
	if err := ctx.Err(); err != nil {
		return ctxErr(ctx)
	}
	p := &proposal{cc: &pb.ConfChange{Type: t.Enum(), NodeId: new(uint64(c.Node))}, done: make(chan struct{})}
	if err := g.post(func(in *inbox) { in.props = append(in.props, p) }); err != nil {
		return err
	}
	_, err := g.wait(ctx, p)
	return err
}

// Compact snapshots the state machine and drops the log up to the
// snapshot's index.
func (g *group) Compact(ctx context.Context) error {
	c := &compaction{ctx: ctx, done: make(chan error, 1)}
	if err := g.post(func(in *inbox) { in.compacts = append(in.compacts, c) }); err != nil {
		return err
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-g.stoppedC:
		select {
		case err := <-c.done:
			return err
		default:
		}
		return consensus.ErrStopped
	}
}

// stop asks the worker to stop the group and waits until it has.
func (g *group) stop(ctx context.Context, err error) error {
	g.mu.Lock()
	if !g.stopped && !g.in.stop {
		g.in.stop, g.in.stopErr = true, err
	}
	g.mu.Unlock()
	g.e.sched.enqueue(g)
	select {
	case <-g.stoppedC:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// setStatus publishes the worker's view; it wakes waiters on a change of
// leader, term or role.
func (g *group) setStatus(s consensus.Status) {
	g.mu.Lock()
	old := g.status
	g.status = s
	if old.Leader != s.Leader || old.Term != s.Term || old.Role != s.Role {
		close(g.changed)
		g.changed = make(chan struct{})
	}
	g.mu.Unlock()
}

// errStorage wraps a store failure.
func errStorage(err error) error {
	return &consensus.Error{Code: consensus.CodeStorage, Msg: err.Error(), Err: err}
}

var errUnknownOutcome = errors.New("the entry's index was covered by a snapshot; outcome unknown")
