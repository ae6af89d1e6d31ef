package consensus

import (
	"context"
	"fmt"

	"github.com/chronik-go/chronik/core/storage"
)

// NodeID names a broker. 0 means none.
type NodeID uint64

// GroupID names a Raft group; it is also the group's id in the store.
type GroupID = storage.GroupID

// Role is a node's role in one group.
type Role uint8

const (
	RoleFollower Role = iota
	RoleCandidate
	RoleLeader
	RoleLearner
)

func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "follower"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	case RoleLearner:
		return "learner"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Status is a snapshot of one group's state on this node.
type Status struct {
	Group    GroupID
	Node     NodeID
	Role     Role
	Term     uint64
	Leader   NodeID // 0 if unknown
	Commit   uint64
	Applied  uint64
	Voters   []NodeID
	Learners []NodeID
}

// Entry is a committed proposal, as passed to StateMachine.Apply.
type Entry struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// Snapshot is a state machine's snapshot: the state after applying every
// entry up to and including Index. Entries after Index are kept in the log
// and replayed after Restore.
type Snapshot struct {
	Index uint64
	Data  []byte
}

// StateMachine is the host's side of a group. The engine calls it from one
// goroutine at a time per group.
type StateMachine interface {
	// Apply applies committed entries in index order. An error stops the
	// group (the state machine can no longer follow the log).
	Apply(ctx context.Context, entries []Entry) error
	// Snapshot describes the state at some index at most the last applied;
	// the log before that index may be dropped.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Restore replaces the state with s. Entries after s.Index follow.
	Restore(ctx context.Context, s Snapshot) error
	// LeaderChanged reports a new leader or term (leader 0: none known).
	LeaderChanged(ctx context.Context, leader NodeID, term uint64)
}

// GroupSpec says how to start a group.
type GroupSpec struct {
	ID GroupID
	// Members is the initial voter set of a new group, the same on every
	// member; empty for a node added later, or when the store has state.
	Members      []NodeID
	StateMachine StateMachine

	_ struct{}
}

// ChangeType is a membership change.
type ChangeType uint8

const (
	AddVoter ChangeType = iota
	RemoveNode
	AddLearner
)

// MembershipChange adds or removes one node.
type MembershipChange struct {
	Type ChangeType
	Node NodeID
}

// Group is one running Raft group on this node.
type Group interface {
	ID() GroupID
	// Propose replicates data and returns its index once it is committed
	// and applied here.
	Propose(ctx context.Context, data []byte) (uint64, error)
	// Status is this node's current view of the group.
	Status() Status
	// Leading reports whether this node leads the group at term, as the
	// Raft implementation itself has it at the moment of the call: it turns
	// false as soon as this node steps down or sees a later term, before
	// StateMachine.LeaderChanged reports that, and in any case before this
	// node sends a vote that lets another node lead. (The host keeps its
	// own view of leadership from LeaderChanged; that view lags, and a
	// replica that serves reads as leader checks Leading too.) It is called
	// on every read a leader serves: it must not block, allocate or take a
	// lock the Raft loop holds for long. It says nothing about a leader cut
	// off from the others that has not noticed yet: see the package doc.
	Leading(term uint64) bool
	// ReadBarrier returns nil once this node has confirmed that it still
	// leads the group at term, by a round of messages with a quorum of the
	// voters that started after the call (Raft's ReadIndex, thesis §6.4),
	// and has applied everything committed before the call: state the
	// host reads from its StateMachine after ReadBarrier returned is at
	// least as new as anything any leader had committed when it was
	// called. It fails with CodeNotLeader (and a leader hint) when this
	// node does not lead at term or stops leading before the round
	// confirms it, with CodeStopped when the group stops, and with
	// CodeTimeout wrapping ctx's error when ctx ends first; a leader cut
	// off from a quorum never returns nil, it blocks until Raft deposes it
	// or ctx ends. Concurrent calls share rounds: a call joins the next
	// round that starts after it arrived, so its cost is at most two round
	// trips to the fastest quorum, one message per follower per round
	// whatever the number of callers. A group whose only voter is this
	// node returns at once.
	ReadBarrier(ctx context.Context, term uint64) error
	// TransferLeadership hands leadership to node to and waits until it
	// leads (or ctx ends). Only the leader may call it.
	TransferLeadership(ctx context.Context, to NodeID) error
	// ChangeMembership commits a membership change.
	ChangeMembership(ctx context.Context, c MembershipChange) error
	// Compact snapshots the state machine and drops the log up to the
	// snapshot's index on this node.
	Compact(ctx context.Context) error
}

// Engine runs the groups of one broker.
type Engine interface {
	StartGroup(ctx context.Context, spec GroupSpec) (Group, error)
	// Group returns a started group.
	Group(id GroupID) (Group, bool)
	StopGroup(ctx context.Context, id GroupID) error
	// DeleteGroup stops the group (if started) and drops its data.
	DeleteGroup(ctx context.Context, id GroupID) error
	// SetPeer sets the address of another broker's consensus listener.
	SetPeer(ctx context.Context, id NodeID, addr string) error
	// Addr is the address this engine listens on for other brokers.
	Addr() string
	Shutdown(ctx context.Context) error
}

// Params are what the host gives an engine besides its config.
type Params struct {
	Node   NodeID
	Store  storage.Store
	Listen string            // host:port for peer traffic; port 0 picks one
	Peers  map[NodeID]string // known peers' addresses (SetPeer adds more)

	_ struct{}
}
