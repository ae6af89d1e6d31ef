// Package etcd runs Chronik Raft groups on go.etcd.io/raft/v3 (v3.7, pinned):
// one raft.RawNode per group, driven by a fixed pool of workers.
//
// # How a group is driven
//
//  1. A group is scheduled on a worker when it has work: a tick, a message
//     from a peer, a proposal or another request. Per-group flags keep it in
//     the run queue at most once, and no two workers hold it at once; there
//     is no goroutine per group. While a synced write of this node has made
//     no progress for a heartbeat interval (a stalled disk), no group is
//     ticked: time in which this node could not persist does not count
//     towards election timeouts, leases or CheckQuorum.
//  2. A worker takes a batch of ready groups and, for all of them: feeds the
//     queued work to each RawNode and collects its Ready; sends the messages
//     that promise nothing about this node's disk (appends, heartbeats, vote
//     requests: Raft thesis 10.2.1) through the shared transport (one batch
//     per peer); persists every group's entries, hard state and snapshot in
//     ONE storage.Store.Write (one fsync); then sends the messages that do
//     (acknowledgements of entries, votes); then applies committed entries to
//     each group's StateMachine, in order; then calls Advance. Groups of the
//     batch whose Ready needs no fsync (no entries, snapshot, term or vote)
//     go first, with a write that does not sync, and are let go of before
//     the fsync, so that a slow disk does not hold up their ticks and
//     heartbeats. A group whose only voter is this node campaigns at once.
//     LeaderChanged and Status are updated at the end of the round, after
//     the apply; the role and term that Group.Leading reads are published
//     as soon as the inbox is stepped, before the round sends anything, so
//     a leader that steps down (to vote for another candidate, or on a
//     later term) stops answering true before its vote can leave.
//  3. The Raft log is the store's log. A group's state blob holds its
//     HardState and its latest snapshot (metadata and the state machine's
//     snapshot bytes, which are small); conf states after the snapshot are
//     rebuilt by replaying the log, so on restart the group restores the
//     snapshot and re-applies the committed entries after it.
//  4. Proposals are stored verbatim (storage.KindNormal); a leader's empty
//     entry is stored as storage.KindNoop, membership changes as
//     storage.KindConfChange. A proposal is tracked by the (index, term) it
//     was appended at; it succeeds when that index is applied with that
//     term, and fails with CodeDropped when a different entry is applied
//     there.
//  5. Idle groups quiesce: a leader whose followers have everything, and
//     that hears from a quorum of its voters' nodes, stops ticking and tells
//     them so with a marked heartbeat; they stop ticking too while they hear
//     from the leader's node (every engine sends one small liveness message
//     per peer per heartbeat interval, not one per group). A proposal or a
//     message from a peer wakes the group; a leader that stops hearing from
//     a quorum wakes and keeps ticking, so that CheckQuorum can depose it.
//  6. ReadBarrier is raft's ReadIndex with ReadOnlySafe (no lease): the
//     calls queued for a group go to the worker in its inbox; with no
//     round in flight the worker issues one ReadIndex for all of them
//     (a quiesced leader wakes for it and may quiesce again once no read
//     is pending), and calls arriving meanwhile wait for the next round, so
//     that each round started after its callers arrived. The ReadState in
//     a Ready is matched by its request context; its callers return once
//     the group has applied the read index. A round in flight fails with
//     CodeNotLeader as soon as the node no longer leads at its term (raft
//     drops pending reads when it steps down). A one-voter group confirms
//     in the same round.
package etcd
