// Package consensus defines the replication layer of a broker: one Engine
// per broker runs many Raft groups (one per partition, one for cluster
// metadata), each with a StateMachine supplied by the broker.
//
// # The contract, in order
//
//  1. The host opens its storage.Store and creates one Engine with a
//     consensus Factory, giving it this node's id, the store, the address to
//     listen on for other brokers and the addresses of the peers it knows
//     (SetPeer adds or changes one later).
//  2. For each group this node replicates, the host calls StartGroup with a
//     GroupSpec. If the store holds state for the group, the group resumes
//     from it and Members is ignored; otherwise Members (non-empty) is the
//     initial voter set, identical on every member, or empty for a node that
//     was added by ChangeMembership and waits to hear from the leader.
//  3. The engine calls the group's StateMachine from one goroutine per group
//     at a time: Restore with the latest snapshot (if any) before anything
//     else, then Apply with committed entries, in index order, each index
//     exactly once per start. After a restart, entries after the snapshot
//     are applied again: the state machine is rebuilt from snapshot + log.
//     Only entries proposed with Propose are passed to Apply; the engine's
//     own entries (leader no-ops, membership changes) are not, but they take
//     indexes, so indexes seen by Apply may have gaps. LeaderChanged is
//     called on every change of leader or term seen by this node, from the
//     same goroutine as Apply or another one, and some time after Raft made
//     the change: a host must not take its own record of LeaderChanged as
//     proof that it still leads. Group.Leading is the live answer: false
//     from the moment Raft steps down (or sees a later term) on this node,
//     before it votes for another candidate. A leader that is cut off and
//     has not noticed yet still answers true until Raft deposes it (a
//     leader lease or check-quorum, some election timeouts).
//     Group.ReadBarrier closes that window: it returns nil only after a quorum
//     round trip that started after the call confirmed this node still
//     leads at the term, and after this node applied everything committed
//     before the call. A host that must never serve state older than some
//     other leader already served (a high watermark read after another
//     read saw a higher one) calls it first and reads its StateMachine's
//     state after it returned, never before. Calls are coalesced into
//     shared rounds.
//  4. Propose returns once the entry is committed and applied on this node,
//     with its index; it fails with CodeNotLeader (and a leader hint) on a
//     follower. An error other than CodeNotLeader leaves the outcome unknown:
//     the entry may still commit.
//  5. The Raft log is the store's log and the only copy of the data: a
//     proposal's data is stored verbatim as the Data of a storage.KindNormal
//     entry at the index Propose returned, so the host may read committed
//     entries straight from its storage.Log (the partition log). The log
//     prefix is dropped only when the host asks with Compact: the engine
//     calls StateMachine.Snapshot, which names the index it describes (at
//     most the applied index), persists the snapshot and drops the entries
//     up to that index. A follower that needs entries below the leader's
//     first index receives that snapshot instead, through Restore.
//  6. StopGroup stops one group and keeps its data; DeleteGroup stops it and
//     drops its data. Shutdown stops every group and the transport.
//
// Nothing in these interfaces is a channel, a callback registration or a
// shared buffer, so that an Engine can live in another process: calls and
// their results are values, errors carry a Code.
package consensus
