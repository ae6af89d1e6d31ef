package protocol

import (
	"context"
	"time"
)

// GroupHost is the optional capability of a Host that coordinates consumer
// groups (the classic group protocol) and stores their committed offsets.
// A protocol server checks for it with a type assertion and offers the group
// APIs only when the Host implements it (hashicorp/raft's optional-interface
// style: Host itself does not grow).
//
// Every method is safe for concurrent use. Per-item outcomes are ErrorCodes
// in the results. JoinGroup and SyncGroup block while the group rebalances
// (up to the members' rebalance timeout) or until ctx ends.
type GroupHost interface {
	// FindCoordinator names the broker coordinating each key. Only group
	// keys (KeyType 0) are coordinated; transaction keys answer
	// COORDINATOR_NOT_AVAILABLE.
	FindCoordinator(ctx context.Context, keyType int8, keys []string) []Coordinator
	JoinGroup(ctx context.Context, req JoinGroupRequest) JoinGroupResult
	SyncGroup(ctx context.Context, req SyncGroupRequest) SyncGroupResult
	Heartbeat(ctx context.Context, req HeartbeatRequest) ErrorCode
	// LeaveGroup removes members; the result has one code per member in
	// request order (or Err for the whole group).
	LeaveGroup(ctx context.Context, req LeaveGroupRequest) LeaveGroupResult
	OffsetCommit(ctx context.Context, req OffsetCommitRequest) OffsetCommitResult
	OffsetFetch(ctx context.Context, req OffsetFetchRequest) OffsetFetchResult
	DescribeGroups(ctx context.Context, groups []string) []GroupDescription
	// ListGroups lists the groups this broker coordinates (clients ask
	// every broker), filtered by state when states is not empty.
	ListGroups(ctx context.Context, states []string) ([]GroupListing, ErrorCode)
	DeleteGroups(ctx context.Context, groups []string) []GroupResult
	OffsetDelete(ctx context.Context, req OffsetDeleteRequest) OffsetDeleteResult
}

// Coordinator answers FindCoordinator for one key.
type Coordinator struct {
	Key    string
	Err    ErrorCode
	ErrMsg string
	Broker Broker // ID -1 when Err is set
}

// GroupProtocol is one protocol (assignor) a member supports, with its
// opaque metadata (the consumer subscription).
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinGroupRequest is a member (re)joining a group.
type JoinGroupRequest struct {
	Version          int16 // the request version: v4+ requires a member id first
	Group            string
	MemberID         string
	InstanceID       *string // static membership (v5+)
	ProtocolType     string
	Protocols        []GroupProtocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	ClientID         string
	ClientHost       string
	Reason           string
}

// JoinGroupMember is one member as the leader sees it in the join response.
type JoinGroupMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinGroupResult answers a JoinGroupRequest. Members is set for the
// leader only.
type JoinGroupResult struct {
	Err          ErrorCode
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	MemberID     string
	Members      []JoinGroupMember
}

// SyncGroupAssignment is the leader's assignment for one member.
type SyncGroupAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncGroupRequest is a member's sync after a join; the leader's carries
// the assignments.
type SyncGroupRequest struct {
	Group        string
	Generation   int32
	MemberID     string
	InstanceID   *string
	ProtocolType *string // v5+
	Protocol     *string // v5+
	Assignments  []SyncGroupAssignment
}

// SyncGroupResult answers a SyncGroupRequest.
type SyncGroupResult struct {
	Err          ErrorCode
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest keeps a member alive.
type HeartbeatRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string
}

// LeaveMember is one member leaving (MemberID may be empty for a static
// member named by InstanceID).
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// LeaveGroupRequest removes members from a group.
type LeaveGroupRequest struct {
	Group   string
	Members []LeaveMember
}

// LeaveGroupResult answers it.
type LeaveGroupResult struct {
	Err     ErrorCode
	Members []ErrorCode
}

// OffsetCommitPartition is one committed offset.
type OffsetCommitPartition struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32 // -1 if unknown
	Metadata    *string
}

// OffsetCommitRequest commits offsets for a group. Generation -1 with an
// empty member id is a simple (non-member) commit, accepted while the group
// has no members.
type OffsetCommitRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string
	Partitions []OffsetCommitPartition
}

// OffsetCommitResult has one code per partition, in request order.
type OffsetCommitResult struct {
	Partitions []ErrorCode
}

// TopicPartitions names partitions of a topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// OffsetFetchRequest asks for a group's committed offsets; Topics nil means
// all of them.
type OffsetFetchRequest struct {
	Group  string
	Topics []TopicPartitions
}

// FetchedOffset is one committed offset (-1 when none is committed).
type FetchedOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    *string
	Err         ErrorCode
}

// OffsetFetchResult answers an OffsetFetchRequest. An unknown group has no
// error and offset -1 for each asked partition.
type OffsetFetchResult struct {
	Err     ErrorCode
	Offsets []FetchedOffset
}

// GroupMember describes a member.
type GroupMember struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	Metadata   []byte // of the group's selected protocol
	Assignment []byte
}

// GroupDescription describes a group (DescribeGroups). An unknown group
// has State "Dead" and no error.
type GroupDescription struct {
	Group        string
	Err          ErrorCode
	State        string // Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
	ProtocolType string
	Protocol     string
	Members      []GroupMember
}

// GroupListing is one group in ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        string
}

// GroupResult is a per-group outcome (DeleteGroups).
type GroupResult struct {
	Group string
	Err   ErrorCode
}

// OffsetDeleteRequest removes committed offsets of a group.
type OffsetDeleteRequest struct {
	Group  string
	Topics []TopicPartitions
}

// OffsetDeleteResult has a group-level code and one code per partition,
// in request order.
type OffsetDeleteResult struct {
	Err        ErrorCode
	Partitions []FetchedOffset // Topic, Partition and Err only
}
