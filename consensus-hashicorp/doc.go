// Package hashicorp runs Chronik Raft groups on github.com/hashicorp/raft
// (v1.8.0): one raft.Raft per group, the library having no multi-raft.
//
// # How a group is built
//
//  1. Storage. The group's LogStore and StableStore are views over the
//     broker's shared storage.Store (see store): a proposal is stored
//     verbatim as a storage.KindNormal entry at the index Propose returns;
//     the library's other entries map to other kinds. The StableStore keys
//     (CurrentTerm, LastVoteTerm, LastVoteCand) and the latest snapshot's
//     record live in the group's state blob, which starts with a "written
//     by hashicorp" marker: a group written by consensus-etcd is refused
//     with an error naming both backends (and etcd refuses ours). Log
//     appends and votes are synced; a new term is written without an fsync
//     of its own, made durable by the group's next synced write (see
//     store.Set for why that is safe). Writes of many groups arriving
//     together share one Store.Write and so one fsync (see writer).
//  2. The library never drops log entries: TrailingLogs and
//     SnapshotThreshold are huge, and the LogStore ignores deletions at or
//     below the latest snapshot. Compact takes a snapshot through the
//     library and then drops the log below the state machine's snapshot
//     index, which may be lower than the library's (see snapshot.go for how
//     the entries in between travel with the snapshot).
//  3. Transport. Each group has a virtual raft.Transport over the broker's
//     shared node transport (one gRPC stream per pair of brokers): the
//     library's RPCs become request and answer messages tagged by group,
//     with correlation ids, their bodies encoded by hand (codec.go); heartbeats take the library's fast path on the
//     receiving side; snapshots go on the transport's snapshot RPC.
//  4. State machine. The FSM adapter passes only proposals (LogCommand) to
//     StateMachine.Apply, in order. The node's view of the group (state,
//     leader, term) is kept in step with the library by a synchronous
//     observer filter and by the StableStore's term writes, so that leader
//     and term always go together; LeaderChanged is delivered from one
//     goroutine per group at a time. Every state machine call holds the
//     group's smMu: calls never overlap and none comes after the group
//     stopped. So LeaderChanged lags the library (behind an Apply in
//     progress, behind the delivery goroutine's scheduling); Leading reads
//     the library's own state and term, which it sets before it answers the
//     request (a vote, an append of a later term) that made it step down.
//  5. Proposals. Propose tags its entry with a token in the log entry's
//     Extensions (not stored, only the leader's in-memory copy carries it)
//     and completes when the FSM applies that token; when this node stops
//     leading, pending proposals fail with an unknown outcome. So no
//     goroutine waits on the library's futures for proposals.
//  6. ReadBarrier. Calls gather for the next round while one runs; a
//     round (one goroutine) numbers outgoing requests from a fence on,
//     calls VerifyLeader (which heartbeats every follower at once) and
//     then waits until a majority of voters answered, at the round's
//     term, a request numbered after the fence (see acks: VerifyLeader
//     alone counts answers to requests sent before it, and idleAppends
//     answers some appends without a round trip), then until the FSM has
//     applied the commit index of the start (or the first index of the
//     leader's term, if later).
//
// # Cost
//
// The library runs three goroutines per group (main loop, FSM, snapshots)
// plus two per follower on a leader (replication and heartbeat); this
// engine adds one per group (the transport's serve loop) and, briefly, one
// to deliver leader changes. Each leader heartbeats every follower every
// HeartbeatTimeout/10 and sends an append every CommitTimeout when idle
// (most of those are answered on the leader's side: see idleAppends):
// idle groups are not quiesced. TestFootprint measures goroutines and idle
// CPU beside consensus-etcd's.
package hashicorp
