// Package pebblestore is a storage.Store on Pebble
// (github.com/cockroachdb/pebble/v2), CockroachDB's LSM key-value store: a
// third-party storage engine for Chronik, written against package storage
// alone, the way a plugin author would write one.
//
// # Using it
//
// Open a directory with Open (or through NewFactory, type "pebble", which
// opens component.Settings.DataDir). One Store owns a directory: Pebble
// holds a lock on DIR/LOCK (fcntl, plus an in-process check; Open resolves
// symlinks first), so a second Open, in this process or another, fails with
// an error that says so. The Store and its Logs are safe for concurrent
// use; see package storage for the contract they keep. Beyond it:
//
//   - Durability: every Write is one Pebble batch, written to Pebble's
//     write-ahead log and memtable. With sync=true (and Config.Sync, the
//     default) Write waits for an fsync of the WAL; concurrent Writes share
//     one, because Pebble's commit pipeline syncs once for every batch
//     queued while the previous fsync ran. The store adds no fsync of its
//     own. Drop is committed the same way, as a synced Write.
//   - A failed commit (a failed fsync) is fatal: the store fails closed and
//     every later call returns storage.CodeFailed (Close still releases
//     Pebble and the lock).
//   - A Write larger than MaxWriteSize fails with storage.CodeTooLarge.
//   - Pebble's own log messages go to the slog.Logger given to Open (debug
//     for information, error for errors); nothing is printed to stdout.
//     Should Pebble meet a broken invariant of its own (its Logger.Fatalf),
//     the store logs it and panics, as Pebble's default logger would exit.
//
// # Keys
//
// Keys are compact and binary (see keys.go). Every key of a group starts
// with 0x01 and the group id (8 bytes, big-endian), then a kind byte:
//
//	0x01 meta      first index and Term(first-1), once a Reset or TruncBefore moved them
//	0x02 state     the state blob
//	0x03 term run  + index (8, BE) -> term: entries from here on have this term
//	0x04 entry     + index (8, BE) -> uvarint term | kind | data
//
// and a key "\x00format" holds the layout version. Big-endian numbers
// make a group's keys contiguous and its entries sorted by index, so that
// one range deletion drops a suffix, a prefix or the whole group, and one
// iterator reads a run of entries.
//
// # Writes
//
// Write checks the whole batch first (storage.CheckWrites, against the
// in-memory indexes): a bad batch is refused whole with CodeInvalid and
// nothing is written. It then builds one Pebble batch for all its
// GroupWrites, in order (several for one group are fine: each sees what the
// previous one left):
//
//   - Reset: one range deletion of the group's runs and entries, and a meta
//     key;
//   - Entries: a range deletion of the replaced suffix (only when they
//     overwrite), a set per entry, and a run key where the term changes;
//   - State: a set;
//   - TruncBefore: range deletions of the entries and runs below it, the
//     run key at the new first index, and a meta key.
//
// The batch is committed once, with one (shared) fsync.
//
// # In memory, and ordering
//
// Each group has an immutable index, replaced by each Write: first and last
// index, Term(first-1), the state, and the term runs (Raft's terms only grow
// along a log, so a log has one run per term it spans). FirstIndex,
// LastIndex, Term and State read it without touching Pebble; Entries reads
// Pebble with an iterator over the entries asked for and copies them.
//
// Writes to different groups run in parallel, without a store-wide lock
// around the commit, so that Pebble can group their fsyncs. Writes to one
// group are ordered by a mutex of the group (wmu), taken for all the groups
// of a Write in ascending order: a Write holds it from checking the batch
// until the group's new index is published, so the index changes in the
// order Pebble applied the batches. A second per-group lock (rmu) makes a
// batch's appearance in Pebble and the publication of the new index one
// step for readers: the batch is applied with DB.ApplyNoSyncWait (visible,
// not yet synced) under it, and Entries opens its iterator under it, so
// Pebble and the index never disagree about a group. The fsync is waited
// for after the group locks are released. As with the wal store, a reader
// may see a synced Write before it returns.
//
// # Recovery
//
// Open rebuilds the indexes from the keys: per group it reads the meta,
// state and run keys, and only the keys of the first and last entries (two
// seeks), never an entry's value, so Open costs a few reads per group
// however long the logs. Pebble replays its WAL first, so the store comes
// back with a prefix of its Writes (Pebble's batches are atomic, and its
// WAL is replayed up to the first torn record).
package pebblestore
