package broker

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
)

// fakeGroup is a consensus.Group whose live leadership the test sets, and
// whose Propose applies the entry to the partition at once (a one-node
// commit).
type fakeGroup struct {
	p        *partition
	leadTerm atomic.Uint64 // Leading(t) is t == leadTerm (0: not leading)

	barriers atomic.Int64 // ReadBarrier calls

	mu        sync.Mutex
	index     uint64
	proposals int
	// barrier, if set, is what ReadBarrier does for a term this group
	// leads (nil: confirm at once).
	barrier func(term uint64) error
}

var _ consensus.Group = (*fakeGroup)(nil)

func (g *fakeGroup) ID() consensus.GroupID { return g.p.group }

func (g *fakeGroup) Leading(term uint64) bool { return term != 0 && g.leadTerm.Load() == term }

func (g *fakeGroup) ReadBarrier(ctx context.Context, term uint64) error {
	g.barriers.Add(1)
	if !g.Leading(term) {
		return consensus.NotLeader(0)
	}
	g.mu.Lock()
	f := g.barrier
	g.mu.Unlock()
	if f != nil {
		return f(term)
	}
	return nil
}

func (g *fakeGroup) setBarrier(f func(term uint64) error) {
	g.mu.Lock()
	g.barrier = f
	g.mu.Unlock()
}

// apply commits data as the next entry at term.
func (g *fakeGroup) apply(term uint64, data []byte) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.index++
	return g.index, g.p.Apply(context.Background(), []consensus.Entry{{Index: g.index, Term: term, Data: data}})
}

func (g *fakeGroup) Propose(ctx context.Context, data []byte) (uint64, error) {
	g.mu.Lock()
	g.proposals++
	g.mu.Unlock()
	t := g.leadTerm.Load()
	if t == 0 {
		return 0, consensus.NotLeader(0)
	}
	return g.apply(t, data)
}

func (g *fakeGroup) Status() consensus.Status { return consensus.Status{Group: g.p.group} }
func (g *fakeGroup) TransferLeadership(context.Context, consensus.NodeID) error {
	return consensus.Errorf(consensus.CodeInvalid, "not in this fake")
}
func (g *fakeGroup) ChangeMembership(context.Context, consensus.MembershipChange) error {
	return consensus.Errorf(consensus.CodeInvalid, "not in this fake")
}
func (g *fakeGroup) Compact(context.Context) error { return nil }

func epochEntry(term uint64) []byte {
	data := make([]byte, 9)
	data[0] = cmdEpoch
	binary.BigEndian.PutUint64(data[1:], term)
	return data
}

// servingHarness is a broker (node 1) hosting partition t-0 over a
// fakeGroup, without an engine: the test plays the consensus library.
type servingHarness struct {
	t *testing.T
	b *Broker
	p *partition
	g *fakeGroup
}

func newServingHarness(t *testing.T) *servingHarness {
	t.Helper()
	return newServingHarnessOf(t, "t")
}

// newServingHarnessOf hosts partition 0 of topic (its only partition).
func newServingHarnessOf(t *testing.T, topic string) *servingHarness {
	t.Helper()
	b := &Broker{
		log:    slog.New(slog.DiscardHandler),
		cfg:    DefaultConfig(),
		self:   1,
		meta:   newMetadata(),
		coord:  newCoordinator(),
		parts:  map[consensus.GroupID]*replica{},
		byName: map[string][]*replica{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	t.Cleanup(b.cancel)
	pm := partitionMeta{Group: firstPartitionGroup, Replicas: []int32{1, 2, 3}}
	b.meta.mu.Lock()
	b.meta.st.Topics[topic] = &topicMeta{Name: topic, Partitions: []partitionMeta{pm}}
	b.meta.publish()
	b.meta.mu.Unlock()
	p := newPartition(topic, 0, pm.Group, b.self)
	g := &fakeGroup{p: p}
	p.setLive(g)
	r := &replica{p: p, g: g, meta: pm}
	b.parts[pm.Group] = r
	b.byName[topic] = []*replica{r}
	return &servingHarness{t: t, b: b, p: p, g: g}
}

// fetch fetches t-0 at the high watermark (nothing to read: the log is
// not needed) and returns the result.
// lead makes this replica the leader of term, ready: Raft leads, and the
// term's epoch marker is applied.
func (h *servingHarness) lead(term uint64) {
	h.t.Helper()
	h.p.LeaderChanged(context.Background(), 1, term)
	h.g.leadTerm.Store(term)
	if _, err := h.g.apply(term, epochEntry(term)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *servingHarness) fetch() protocol.FetchResult {
	h.t.Helper()
	ss := h.p.serving()
	out := h.b.Fetch(context.Background(), protocol.FetchRequest{MaxBytes: 1 << 20,
		Partitions: []protocol.FetchPartition{{Topic: "t", Offset: ss.hwm, MaxBytes: 1 << 20, LeaderEpoch: -1}}})
	if len(out) != 1 {
		h.t.Fatalf("fetch: %d results", len(out))
	}
	return out[0]
}

func (h *servingHarness) listEnd() protocol.ListOffsetsResult {
	return h.b.ListOffsets(context.Background(), protocol.ListOffsetsRequest{Topic: "t", Timestamp: -1})
}

func (h *servingHarness) produce(ctx context.Context) protocol.ProduceResult {
	return h.b.Produce(ctx, protocol.ProduceRequest{Topic: "t", Acks: -1, Records: makeBatch(-1, -1, -1, 1, 0)})
}

func (h *servingHarness) metadataLeader() int32 {
	h.t.Helper()
	md, err := h.b.Metadata(context.Background(), []string{"t"}, false)
	if err != nil || len(md) != 1 || len(md[0].Partitions) != 1 {
		h.t.Fatalf("metadata: %+v, %v", md, err)
	}
	return md[0].Partitions[0].Leader
}

// wantServing checks that t-0 is served with high watermark hwm at term.
func (h *servingHarness) wantServing(what string, hwm int64, term uint64) {
	h.t.Helper()
	if fr := h.fetch(); fr.Err != protocol.ErrNone || fr.HighWatermark != hwm {
		h.t.Errorf("%s: fetch: err %d, high watermark %d; want served with %d", what, fr.Err, fr.HighWatermark, hwm)
	}
	if lo := h.listEnd(); lo.Err != protocol.ErrNone || lo.Offset != hwm || lo.LeaderEpoch != int32(term) {
		h.t.Errorf("%s: list offsets: %+v; want end offset %d at epoch %d", what, lo, hwm, term)
	}
	if l := h.metadataLeader(); l != 1 {
		h.t.Errorf("%s: metadata names leader %d, want 1", what, l)
	}
}

// wantNotServing checks that t-0 answers NOT_LEADER_OR_FOLLOWER (and that
// Metadata does not name this broker) without proposing anything.
func (h *servingHarness) wantNotServing(what string) {
	h.t.Helper()
	if fr := h.fetch(); fr.Err != protocol.ErrNotLeaderOrFollower || fr.HighWatermark != -1 {
		h.t.Errorf("%s: fetch: err %d, high watermark %d; want NOT_LEADER_OR_FOLLOWER", what, fr.Err, fr.HighWatermark)
	}
	if lo := h.listEnd(); lo.Err != protocol.ErrNotLeaderOrFollower {
		h.t.Errorf("%s: list offsets: %+v; want NOT_LEADER_OR_FOLLOWER", what, lo)
	}
	h.g.mu.Lock()
	before := h.g.proposals
	h.g.mu.Unlock()
	// A produce waits (leaderSettle) for a replica that may be about to
	// serve; an ended context makes it answer at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if pr := h.produce(ctx); pr.Err != protocol.ErrNotLeaderOrFollower {
		h.t.Errorf("%s: produce: %+v; want NOT_LEADER_OR_FOLLOWER", what, pr)
	}
	h.g.mu.Lock()
	after := h.g.proposals
	h.g.mu.Unlock()
	if after != before {
		h.t.Errorf("%s: produce proposed %d entries", what, after-before)
	}
	if l := h.metadataLeader(); l == 1 {
		h.t.Errorf("%s: metadata names this broker leader", what)
	}
}

// TestServingFollowsLiveLeadership: a replica serves as leader only while
// its consensus group itself still leads at the term LeaderChanged
// reported, whether or not LeaderChanged has caught up. (The chaos checker
// saw a deposed leader, whose LeaderChanged had not been delivered yet,
// answer a fetch with a high watermark below the new leader's.)
func TestServingFollowsLiveLeadership(t *testing.T) {
	h := newServingHarness(t)
	ctx := context.Background()

	// Term 5: this node leads and has applied its epoch marker.
	h.lead(5)
	if _, err := h.g.apply(5, append([]byte{cmdRecords}, makeBatch(-1, -1, -1, 3, 0)...)); err != nil {
		t.Fatal(err)
	}
	h.wantServing("leader of term 5", 3, 5)
	if pr := h.produce(ctx); pr.Err != protocol.ErrNone || pr.BaseOffset != 3 {
		t.Fatalf("produce on the leader: %+v", pr)
	}
	h.wantServing("after a produce", 4, 5)

	// Raft steps down (it voted for another candidate); LeaderChanged has
	// not been delivered: the partition still says leader of term 5.
	h.g.leadTerm.Store(0)
	h.wantNotServing("deposed, LeaderChanged pending")

	// Raft leads again at a later term, LeaderChanged still pending: the
	// term-5 marker does not make it ready for term 6 (entries of another
	// leader in between may not be applied here).
	h.g.leadTerm.Store(6)
	h.wantNotServing("leading term 6, LeaderChanged pending")

	// LeaderChanged(6) arrives: still not ready before the term-6 marker.
	h.p.LeaderChanged(ctx, 1, 6)
	h.wantNotServing("leading term 6, marker pending")
	if _, err := h.g.apply(6, epochEntry(6)); err != nil {
		t.Fatal(err)
	}
	h.wantServing("leader of term 6", 4, 6)

	// A produce waiting for a replica that Raft deposed returns once
	// LeaderChanged names the new leader.
	h.g.leadTerm.Store(0)
	res := make(chan protocol.ProduceResult, 1)
	go func() { res <- h.produce(ctx) }()
	h.p.LeaderChanged(ctx, 2, 7)
	if pr := <-res; pr.Err != protocol.ErrNotLeaderOrFollower {
		t.Errorf("produce across a leader change: %+v; want NOT_LEADER_OR_FOLLOWER", pr)
	}
	h.wantNotServing("follower of term 7")
}

// TestServingWithoutGroup: a partition whose group is not registered yet
// (StartGroup has not returned) does not serve, whatever LeaderChanged said.
func TestServingWithoutGroup(t *testing.T) {
	p := newPartition("t", 0, firstPartitionGroup, 1)
	p.LeaderChanged(context.Background(), 1, 3)
	if err := p.Apply(context.Background(), []consensus.Entry{{Index: 1, Term: 3, Data: epochEntry(3)}}); err != nil {
		t.Fatal(err)
	}
	if ss := p.serving(); ss.ready {
		t.Fatalf("serving without a group: %+v", ss)
	}
	g := &fakeGroup{p: p}
	g.leadTerm.Store(3)
	p.setLive(g)
	if ss := p.serving(); !ss.ready || ss.term != 3 {
		t.Fatalf("serving with a group leading term 3: %+v", ss)
	}
}

// TestReadsWaitForTheBarrier: Fetch and ListOffsets confirm leadership
// with the group's read barrier before they read what they answer with.
// A leader that Raft has not deposed yet (Leading still true) but that
// cannot confirm with a quorum (cut off: a new leader may already have
// served a higher watermark) answers NOT_LEADER_OR_FOLLOWER, without a
// watermark; state applied while the barrier waited is what is served;
// with broker.linearizable_reads false the barrier is not called.
func TestReadsWaitForTheBarrier(t *testing.T) {
	h := newServingHarness(t)
	ctx := context.Background()
	h.lead(5)
	if _, err := h.g.apply(5, append([]byte{cmdRecords}, makeBatch(-1, -1, -1, 3, 0)...)); err != nil {
		t.Fatal(err)
	}
	h.wantServing("leader of term 5, barrier confirms", 3, 5)
	if n := h.g.barriers.Load(); n < 2 {
		t.Errorf("fetch and list offsets called the barrier %d times, want at least 2", n)
	}

	// The barrier applies an entry committed before it was called: the
	// answer must include it (read after the barrier, not before).
	h.g.setBarrier(func(term uint64) error {
		h.g.setBarrier(nil)
		_, err := h.g.apply(term, append([]byte{cmdRecords}, makeBatch(-1, -1, -1, 1, 0)...))
		return err
	})
	// (List offsets: the harness has no log for a fetch to read records
	// from, and a fetch at offset 3 would find the new one.)
	if lo := h.listEnd(); lo.Err != protocol.ErrNone || lo.Offset != 4 {
		t.Errorf("list offsets with an apply during the barrier: %+v; want end offset 4", lo)
	}

	// Cut off: Raft still leads at term 5, the barrier cannot confirm.
	cut := func(uint64) error { return consensus.NotLeader(0) }
	h.g.setBarrier(cut)
	if fr := h.fetch(); fr.Err != protocol.ErrNotLeaderOrFollower || fr.HighWatermark != -1 || fr.LogStartOffset != -1 || fr.Records != nil {
		t.Errorf("fetch on a leader whose barrier failed: %+v; want NOT_LEADER_OR_FOLLOWER and no offsets", fr)
	}
	if lo := h.listEnd(); lo.Err != protocol.ErrNotLeaderOrFollower || lo.Offset != -1 {
		t.Errorf("list offsets on a leader whose barrier failed: %+v; want NOT_LEADER_OR_FOLLOWER", lo)
	}
	// A long poll too: the barrier comes before the answer it builds.
	ss := h.p.serving()
	out := h.b.Fetch(ctx, protocol.FetchRequest{MaxBytes: 1 << 20, MinBytes: 1, MaxWait: time.Millisecond,
		Partitions: []protocol.FetchPartition{{Topic: "t", Offset: ss.hwm, MaxBytes: 1 << 20, LeaderEpoch: -1}}})
	if fr := out[0]; fr.Err != protocol.ErrNotLeaderOrFollower || fr.HighWatermark != -1 {
		t.Errorf("long-poll fetch on a leader whose barrier failed: %+v; want NOT_LEADER_OR_FOLLOWER", fr)
	}

	// Without linearizable reads the barrier is not asked (and the stale
	// leader serves: what the option trades away).
	h.b.cfg.LinearizableReads = false
	before := h.g.barriers.Load()
	h.wantServing("linearizable_reads off", 4, 5)
	if n := h.g.barriers.Load() - before; n != 0 {
		t.Errorf("linearizable_reads off: the barrier was called %d times", n)
	}
}

// TestOffsetFetchWaitsForTheBarrier: a coordinator answers OffsetFetch only
// after its partition's read barrier confirmed it still leads; one cut off
// from its quorum answers NOT_COORDINATOR (the client finds the new one).
func TestOffsetFetchWaitsForTheBarrier(t *testing.T) {
	h := newServingHarnessOf(t, OffsetsTopic)
	ctx := context.Background()
	h.lead(5)
	req := protocol.OffsetFetchRequest{Group: "g", Topics: []protocol.TopicPartitions{{Topic: "t", Partitions: []int32{0}}}}
	res := h.b.OffsetFetch(ctx, req)
	if res.Err != protocol.ErrNone || len(res.Offsets) != 1 || res.Offsets[0].Offset != -1 {
		t.Fatalf("offset fetch on a confirmed coordinator: %+v; want no error and offset -1", res)
	}
	if n := h.g.barriers.Load(); n != 1 {
		t.Errorf("offset fetch called the barrier %d times, want 1", n)
	}
	h.g.setBarrier(func(uint64) error { return consensus.NotLeader(0) })
	if res := h.b.OffsetFetch(ctx, req); res.Err != protocol.ErrNotCoordinator || len(res.Offsets) != 0 {
		t.Errorf("offset fetch on a coordinator whose barrier failed: %+v; want NOT_COORDINATOR and no offsets", res)
	}
	h.b.cfg.LinearizableReads = false
	if res := h.b.OffsetFetch(ctx, req); res.Err != protocol.ErrNone {
		t.Errorf("linearizable_reads off: %+v; want the offsets without the barrier", res)
	}
}

// TestDeleteRecordsWaitsForTheBarrier: DeleteRecords checks its offset
// against the high watermark and may answer the low watermark without
// proposing; both are reads, confirmed by the barrier first.
func TestDeleteRecordsWaitsForTheBarrier(t *testing.T) {
	h := newServingHarness(t)
	ctx := context.Background()
	h.lead(5)
	req := []protocol.DeleteRecordsPartition{{Topic: "t", Partition: 0, Offset: 0}}
	if res := h.b.DeleteRecords(ctx, req); res[0].Err != protocol.ErrNone || res[0].LowWatermark != 0 {
		t.Fatalf("delete records below the log start on a confirmed leader: %+v; want low watermark 0", res[0])
	}
	if n := h.g.barriers.Load(); n != 1 {
		t.Errorf("delete records called the barrier %d times, want 1", n)
	}
	h.g.setBarrier(func(uint64) error { return consensus.NotLeader(0) })
	if res := h.b.DeleteRecords(ctx, req); res[0].Err != protocol.ErrNotLeaderOrFollower || res[0].LowWatermark != -1 {
		t.Errorf("delete records on a leader whose barrier failed: %+v; want NOT_LEADER_OR_FOLLOWER", res[0])
	}
}
