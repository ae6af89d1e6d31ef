// Package consensustest is the conformance suite every consensus backend
// runs, in the style of go-cloud's drivertest: the backend supplies its
// Factory and a config with short timers (a Backend), a maker of stores for
// its nodes and the Capabilities of those stores; the suite starts clusters
// of engines on loopback and checks the contract of package consensus
// against them.
//
// A backend's test file calls, for example:
//
//	func TestConformance(t *testing.T) {
//		consensustest.Run(t, backend(), memoryStores, consensustest.Capabilities{})
//	}
//	func BenchmarkConformance(b *testing.B) {
//		consensustest.RunBenchmarks(b, backend(), memoryStores)
//	}
//
// # How a cluster is built
//
// Each node is an Engine created with Params{Node, Store, Listen:
// "127.0.0.1:0"} over a store from its own storagetest.Harness. A
// netfault.Network puts one proxy in front of every directed pair of
// nodes; each engine learns its peers' proxy addresses with SetPeer, so the
// suite can isolate nodes and partition groups of them. A restarted node
// listens on a new port; the proxies towards it follow (SetTarget), so its
// peers keep their addresses. Benchmarks connect the engines directly.
//
// The state machine the suite gives every group records the entries it
// applies (index and data) in order; its snapshot is that whole sequence.
//
// # What it checks
//
//   - Election safety: at most one leader per term, across all nodes and
//     restarts, from every LeaderChanged call and every Status polled.
//   - Agreement: the applied sequences of any two replicas are prefixes of
//     each other at every poll, and equal once they have caught up; every
//     acknowledged proposal (Propose returned nil) is applied at the index
//     Propose returned, once, and is in the store's log verbatim as a
//     KindNormal entry at that index.
//   - The state machine calls: never overlapping, Apply indexes increasing
//     (after a Restore, above the snapshot's index), none after Shutdown.
//   - Liveness, with generous bounds derived from Backend.ElectionTimeout
//     (an election within 20 election timeouts; any operation or catch-up
//     within max(50 timeouts, 30s)): a new leader after the leader is
//     isolated and after it is stopped; leadership transfer; adding a
//     voter (a node that starts the group with no Members) and removing
//     one; restart of one node and of every node from its store, after
//     which everything committed is applied again identically; a follower
//     partitioned away while the others Compact catches up through a
//     snapshot (Restore) and ends identical; 200 groups on 3 nodes each
//     elect a leader and commit (Capabilities.ManyGroups changes the number).
//   - Leading is Raft's live answer: it names at most one leader per term
//     (with Status and LeaderChanged); with one of three nodes stopped, a
//     node that leads a later term got the old leader's vote, so from then
//     on the old leader answers Leading false for its term; right after
//     TransferLeadership returns on the old leader, neither Leading nor
//     Status calls it leader.
//   - ReadBarrier: nil on a healthy leader at its term, after which it has
//     applied what was committed before the call; CodeNotLeader on a
//     follower or for another term; 320 concurrent calls all confirm; a
//     one-voter group confirms at once. A leader cut off from both
//     followers (it hears nothing) never gets nil, whether it is called at
//     the cut or after the others elected a new leader that committed
//     more; the new leader's barrier succeeds.
//   - Errors by code: Propose on a follower gives CodeNotLeader naming the
//     leader; a second StartGroup gives CodeExists; calls on a stopped
//     group or engine give CodeStopped.
//   - Goroutine leaks: once a cluster's engines are shut down, its stores
//     and network closed, no goroutine started during the test may remain
//     (go.uber.org/goleak). Sub-tests therefore run one after another;
//     do not run Run in parallel with other tests of the same package.
//
// It also measures, and reports with t.Logf (never asserts), goroutines per
// group (with 200 groups started) and the idle traffic per group (chunks
// and bytes through the proxies per second, once proposals stopped).
//
// A node is restarted by Shutdown of its engine and, when the stores are
// persistent (Capabilities.PersistentStore), Close of its store and Open
// of a new one from the same harness; otherwise the new engine reuses the
// store the old one left open. Either way nothing is kept from the old
// engine but the store.
//
// # Benchmarks
//
// RunBenchmarks measures proposals per second and the commit latency
// (Propose call to return) at p50 and p99, on 3 nodes, with 1 and 64
// concurrent proposers over 1 and 100 groups, reported with b.ReportMetric
// as props/s, p50-ms and p99-ms.
package consensustest

import (
	"context"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage/storagetest"
)

// Backend is the consensus backend under test.
type Backend struct {
	// Name is for logs.
	Name string
	// Factory creates the engines.
	Factory consensus.Factory
	// Config returns a new config for one engine, with short timers (an
	// election timeout of the order of 100ms) so that the suite runs fast.
	Config func() component.Config
	// ElectionTimeout is the election timeout Config sets (the longest, if
	// it is randomised); the suite derives its liveness bounds from it.
	ElectionTimeout time.Duration

	_ struct{}
}

// StoreMaker makes the store harness of one node: the suite calls it once
// per node (so each node has its own data directory) and opens the store
// with Harness.Open, again after a restart.
type StoreMaker = storagetest.HarnessMaker

// Capabilities says what the stores given to the suite promise.
type Capabilities struct {
	// PersistentStore stores keep their data across Close and Open: the
	// suite restarts a node by closing its store and opening it again.
	// Otherwise it restarts the engine over the store left open.
	PersistentStore bool
	// ManyGroups is how many groups ManyGroups starts on its 3 nodes (0:
	// 200). A run that puts more than the engines in the test process (a
	// plugin's shim) may need fewer to stay within the liveness bounds
	// under the race detector.
	ManyGroups int

	_ struct{}
}

// suite carries the arguments of Run to every sub-test.
type suite struct {
	be     Backend
	stores StoreMaker
	caps   Capabilities
}

// Run runs the conformance suite against backend b with stores from
// stores. Sub-tests run one after another (see the package doc).
func Run(t *testing.T, b Backend, stores StoreMaker, caps Capabilities) {
	if b.Factory == nil || b.Config == nil || b.ElectionTimeout <= 0 {
		t.Fatal("consensustest: Backend needs Factory, Config and ElectionTimeout")
	}
	s := &suite{be: b, stores: stores, caps: caps}
	tests := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"ElectAndReplicate", testElectAndReplicate},
		{"Errors", testErrors},
		{"StopAndStartGroup", testStopAndStartGroup},
		{"LeaderIsolated", testLeaderIsolated},
		{"LeaderStopped", testLeaderStopped},
		{"TransferLeadership", testTransferLeadership},
		{"TransferToUnreachable", testTransferToUnreachable},
		{"LeadingFollowsStepDown", testLeadingFollowsStepDown},
		{"ReadBarrier", testReadBarrier},
		{"ReadBarrierDeposed", testReadBarrierDeposed},
		{"Membership", testMembership},
		{"RestartAll", testRestartAll},
		{"SnapshotCatchUp", testSnapshotCatchUp},
		{"ManyGroups", testManyGroups},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

// ctxTimeout is a context for one call the suite expects to finish.
func (c *cluster) ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.opTimeout())
}
