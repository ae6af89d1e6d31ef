// Package etcd runs Chronik Raft groups on go.etcd.io/raft/v3 (v3.7, pinned):
// one raft.RawNode per group, driven by a fixed pool of workers.
//
// # How a group is driven
//
//  1. A group is scheduled on a worker when it has work: a tick, a message
//     from a peer, a proposal or another request. Per-group flags keep it in
//     the run queue at most once, and no two workers hold it at once; there
//     is no goroutine per group.
//  2. A worker takes a batch of ready groups and, for all of them: feeds the
//     queued work to each RawNode and collects its Ready; persists every
//     group's entries, hard state and snapshot in ONE storage.Store.Write
//     (one fsync); then sends all their messages through the shared
//     transport (one batch per peer); then applies committed entries to each
//     group's StateMachine, in order; then calls Advance.
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
//  5. Idle groups quiesce: a leader whose followers have everything stops
//     ticking and tells them so with a marked heartbeat; they stop ticking
//     too while they hear from the leader's node (every engine sends one
//     small liveness message per peer per heartbeat interval, not one per
//     group). A proposal or a message from a peer wakes the group.
package etcd
