// Package storage defines the log store every Raft group of a broker writes
// to: one Store per broker data directory, one Log per group.
//
// # The contract
//
// A Store holds, for each group, a contiguous run of entries
// [FirstIndex, LastIndex] plus an opaque state blob (the consensus backend's
// hard state). It is the only copy of a group's Raft log: the partition log
// of a Kafka topic is its Raft log.
//
//  1. Write applies a batch of GroupWrites, for any number of groups, as one
//     unit per group: for each GroupWrite, in this order,
//     a. Reset (if set) discards the group's whole log; afterwards
//     FirstIndex = Reset.Index+1 and Term(Reset.Index) = Reset.Term;
//     b. Entries (if any) must have consecutive indexes starting at or below
//     LastIndex+1 and at or above FirstIndex; the suffix from Entries[0].Index
//     is replaced by them. A gap (Entries[0].Index > LastIndex+1) or an
//     index below FirstIndex is an error with CodeInvalid, and nothing of
//     the batch is applied;
//     c. State (if non-nil) replaces the group's state blob;
//     d. TruncBefore (if > FirstIndex) drops the entries below it. It may not
//     exceed LastIndex+1. Term(TruncBefore-1) stays answerable.
//  2. With sync=true, Write returns only once the whole batch is durable (one
//     fsync, shared with concurrent callers). With sync=false it is visible to
//     readers at return but may be lost in a crash; a later synced Write makes
//     everything before it durable too. After a crash a store comes back with
//     a prefix of its writes: never a write without the ones before it, never
//     a part of one GroupWrite without the rest of it.
//  3. A Log reflects every Write that returned before the call. Entries
//     returns at least one entry when lo < hi and lo is in range, even if
//     that entry alone exceeds maxBytes (the etcd raft convention). It answers
//     CodeCompacted below FirstIndex and CodeUnavailable above LastIndex.
//  4. Errors carry a Code (see Code) so that they keep their meaning across a
//     process boundary. After a failed fsync the store is closed for good:
//     every later call returns CodeFailed.
//  5. A Store and its Logs are safe for concurrent use. Close waits for
//     in-flight writes; afterwards every call returns CodeClosed.
//
// Nothing here shares memory with the caller after a call returns: the store
// copies what it keeps and callers may reuse their buffers, and the slices
// returned by Entries and State belong to the caller.
package storage
