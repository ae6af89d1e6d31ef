// Package storagetest is the conformance suite every storage.Store runs, in
// the style of go-cloud's drivertest: the implementation supplies a
// HarnessMaker and its Capabilities, and the suite checks the contract of
// package storage against it.
//
// A store's test file calls, for example:
//
//	func TestConformance(t *testing.T) {
//		storagetest.RunConformanceTests(t, newHarness, storagetest.Capabilities{Persistent: true})
//	}
//	func TestCrash(t *testing.T) { storagetest.RunCrashTests(t, newHarness, 1000) }
//	func BenchmarkStore(b *testing.B) { storagetest.RunBenchmarks(b, newHarness) }
//
// Errors are compared by code (storage.CodeOf), never by message.
//
// # What the suite pins down beyond the package doc
//
//   - GroupWrites of the same group in one batch take effect in order, each
//     checked against the log the previous one left.
//   - TruncBefore at or below FirstIndex does nothing.
//   - Entries with lo > hi is CodeInvalid; with lo below FirstIndex and hi
//     past LastIndex+1, CodeCompacted or CodeUnavailable.
//   - Groups lists every group holding entries or state and no group never
//     written or dropped; a group holding neither (its log truncated or
//     reset away, no state) may be listed or not.
//   - An empty, non-nil State is read back with length 0 (nil or not).
//   - Drop of a group never written returns nil or CodeNotFound; a Log
//     taken before Drop reads the group as empty (and then as rewritten).
//   - After Close every call, on the Store and on Logs taken before,
//     returns CodeClosed; a second Close returns nil or CodeClosed.
//   - A persistent store keeps unsynced writes across a clean Close.
//   - In a crash a returned Drop is as durable as a synced Write: it and
//     every write before it survive.
//
// # Goroutine leaks
//
// Every sub-test checks with go.uber.org/goleak that the goroutines alive at
// its end are those alive at its start: a store, once closed and its
// harness closed, must have stopped everything it started. The suite runs
// its sub-tests one after another for this reason; do not run it in
// parallel with other tests of the same package (no t.Parallel around it).
//
// # Replaying a crash test
//
// RunCrashTests names each iteration after its seed ("seed=1234") and logs
// it. Set STORAGETEST_SEED=1234 to run exactly that iteration again.
package storagetest

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// Harness opens the store under test. The suite makes one Harness per
// sub-test (per crash iteration), so a Harness may own one data directory.
type Harness interface {
	// Open opens the store. For a persistent store, opening again after the
	// previous store was closed returns the same data. The suite closes
	// every store it opens before calling Close.
	Open(ctx context.Context) (storage.Store, error)
	// Close releases everything the harness made (temporary directories,
	// ...). It is called once, after every store it opened was closed.
	Close()
}

// HarnessMaker makes a Harness for one sub-test; t is that sub-test, so
// t.TempDir and t.Cleanup may be used.
type HarnessMaker func(ctx context.Context, t testing.TB) (Harness, error)

// Capabilities says what the store under test promises beyond the contract
// every store keeps.
type Capabilities struct {
	// Persistent stores keep their data across Close and Open.
	Persistent bool
	// MaxEntrySize is the largest entry Data, in bytes, the store must
	// accept. The suite writes entries of up to 16 MiB, or of MaxEntrySize
	// when that is smaller. 0 means no limit.
	MaxEntrySize int

	_ struct{}
}

// Crasher is an optional capability of a persistent store's Harness,
// checked by type assertion. RunCrashTests needs it. CrashDir does the
// file work for a store that tracks how much of each file it has synced.
type Crasher interface {
	// CrashCopy makes a crash image of the open store s (opened by this
	// harness): a copy of its files in which every byte written after the
	// last completed fsync may be lost or torn. The implementation cuts
	// each file at a random point at or after its synced length, flips
	// random bytes between the synced length and the cut, and drops the
	// rest, drawing every choice from rng. It returns a Harness that opens
	// that image. It must not disturb s, which stays open and usable.
	CrashCopy(ctx context.Context, s storage.Store, rng *rand.Rand) (Harness, error)
}

// largeEntry is the largest entry the suite writes.
const largeEntry = 16 << 20

func (c Capabilities) maxEntry() int {
	if c.MaxEntrySize > 0 && c.MaxEntrySize < largeEntry {
		return c.MaxEntrySize
	}
	return largeEntry
}
