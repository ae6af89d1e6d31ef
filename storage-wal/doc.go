// Package wal is a storage.Store on disk: one shared, segmented,
// checksummed write-ahead log per broker, which every Raft group appends
// to, with an in-memory index per group.
//
// # Using it
//
// Open a directory with Open (or through NewFactory, type "wal", which opens
// component.Settings.DataDir). One Store owns a directory (it holds a flock
// on DIR/LOCK). The Store is safe for concurrent use; see package storage
// for the contract it keeps. Beyond it:
//
//   - Durability follows Config.Fsync. With "always" (the default) a Write
//     with sync=true returns after an fsync that covers it; concurrent
//     Writes share it (group commit, leader/follower: a waiting writer that
//     finds no fsync in progress takes every record written so far, calls
//     fdatasync once, wakes all their writers and hands the lead to a writer
//     of the next round). With
//     "interval" no Write waits and a background loop syncs every
//     FsyncInterval; with "never" only sealing a segment and Close sync.
//   - A failed fsync (or write) is fatal: the store fails closed and every
//     later call returns storage.CodeFailed. It never retries, since the page
//     cache state after a failed fsync is unknown.
//   - Recovery (Store.Recovery) says whether Open cut a torn tail and where.
//   - A GroupWrite larger than a segment (Config.MaxEntrySize) is refused
//     with storage.CodeTooLarge.
//
// # On disk
//
// The directory holds segment files named by a hexadecimal sequence number
// (0000000000000001.wal, ...), each Config.SegmentSize bytes, preallocated
// before use by writing zeros or by recycling a reclaimed segment
// (*.recycle): fdatasync after an append that grows a file costs several
// times more on ext4 than after an overwrite. A segment is a run of
// records, 8-byte aligned, each a 32-byte header (body length, body
// CRC32C, the segment's sequence number, the sync point, type, header
// CRC32C) and a body. The sequence number in every record tells a record of
// this segment from a stale one left in a recycled file. Record types:
//
//   - batch: the GroupWrites of one Write (or of a part of one, split
//     between GroupWrites when it exceeds a segment), applied whole or not at
//     all. Each entry carries its own CRC32C, checked on every read.
//   - drop: a group dropped.
//   - checkpoint: every group's bounds, Term(first-1) and state. It is
//     written (and synced) before segments are reclaimed, because the
//     records that set those may be in them.
//   - seal: the segment ends here; its body names the next segment. A
//     segment is sealed and fsynced before anything is written to the next.
//
// # Recovery
//
// Open replays the segments in order into the index. Every segment before
// the tail must end in a seal. The first one that does not is the tail: its
// records are replayed up to the first that is torn (zeros, a bad
// checksum, a record of another segment). That is a torn tail, cut and
// reported, unless something proves it was synced: a valid record of the
// same segment further on whose sync point (the offset that was durable
// when it was written) lies past it, or a valid record in a later segment
// (whose predecessor was sealed and synced before it was written). Those
// are corruption in the middle of the log: Open fails with
// storage.CodeCorrupt and skips nothing. Open then seals the tail where its
// valid data ends and starts a new segment, so that bytes beyond the cut are
// never read again.
//
// # Reclaiming space
//
// Segments are reclaimed oldest first: once no group's live entries are in
// the oldest segments (TruncBefore, Reset, overwrites and Drop make entries
// dead), a checkpoint is written and synced and those segment files are
// recycled or removed, in order. Replay of the retained segments is lenient
// until the last checkpoint, which sets every group's exact bounds (and must
// find every entry it names). A group whose oldest live entry sits in an old
// segment pins it and every later one, so when more than
// Config.RewriteSegments segments are retained, the live entries of such
// groups are rewritten at the head of the log (a relocate record) if they
// are small (a quarter of a segment at most); larger ones still pin (see
// docs/ARCHITECTURE.md).
//
// # Fault injection
//
// With Config.SyncMarks each segment N.wal has a side file N.wal.synced
// holding the write offset in the segment that its last successful fsync
// covered (pwritten after every fsync of segment data, never synced
// itself; a prepared segment gets 0 once it is durable). After the process
// is killed, SimulatePowerLoss uses them to turn the directory into what a
// power loss at that moment could leave: bytes before a mark stay; the
// segment's records after it are kept, lost or torn page by page; a
// segment without a mark may vanish. Open ignores the marks in recovery
// and rewrites (or, without SyncMarks, removes) them.
package wal
