package broker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
)

// Partition log entries: one type byte, then the payload. The Raft log is
// the partition log, so these bytes are what a replica stores.
const (
	cmdRecords  byte = 1 // payload: one or more v2 record batches as produced
	cmdEpoch    byte = 2 // payload: uint64 term; a new leader's first entry
	cmdTruncate byte = 3 // payload: int64 offset; drop records below it
)

// producerCache is how many recent batches per producer are remembered for
// duplicate detection (Kafka keeps five).
const producerCache = 5

// resultWindow bounds how many apply results wait for their proposer.
const resultWindow = 4096

// batchInfo locates one record batch: in which entry, where in its data,
// which offsets.
type batchInfo struct {
	raftIndex  uint64
	term       uint64
	pos        uint32 // byte position in the entry's data (after the type byte)
	length     uint32
	baseOffset int64
	lastOffset int64
	maxTS      int64
}

type seqBatch struct {
	raftIndex  uint64
	firstSeq   int32
	lastSeq    int32
	baseOffset int64
}

type producerState struct {
	epoch   int16
	batches []seqBatch // oldest first, at most producerCache
}

// applyResult is what applying one proposal produced, for its proposer.
type applyResult struct {
	err        protocol.ErrorCode
	msg        string
	baseOffset int64
}

// partitionState is the deterministic state of a partition, rebuilt from
// its snapshot and log on every replica.
type partitionState struct {
	nextOffset  int64 // the high watermark once applied
	startOffset int64 // log start offset
	snapIndex   uint64
	snapOffset  int64 // nextOffset as of snapIndex
	batches     []batchInfo
	producers   map[int64]*producerState
	epochs      []epochStart // leader epochs (terms) and their first offsets
	// groups is the materialized consumer group state of a partition of
	// __consumer_offsets (nil for other topics); see offsets.go.
	groups *groupsState
}

type epochStart struct {
	term   uint64
	offset int64
	index  uint64
}

// snapshotData is a partition snapshot: tiny, because the log after it is
// replayed (see consensus doc step 5).
type snapshotData struct {
	NextOffset  int64 `json:"next_offset"`
	StartOffset int64 `json:"start_offset"`
}

// leadership is the part of consensus.Group a partition asks before it
// serves as leader.
type leadership interface {
	Leading(term uint64) bool
	ReadBarrier(ctx context.Context, term uint64) error
}

// partition is one replica of a topic partition and its state machine.
type partition struct {
	topic string
	index int32
	group consensus.GroupID

	mu      sync.RWMutex
	st      partitionState
	results map[uint64]applyResult
	waiters map[chan struct{}]struct{}
	// leader state, set by LeaderChanged and the epoch marker.
	leader     consensus.NodeID
	term       uint64
	readyTerm  uint64 // the term whose epoch marker this node applied
	markerWake chan struct{}
	// live is the group's own, current answer to "do I lead at this
	// term?" (consensus.Group.Leading); nil until StartGroup returned.
	// LeaderChanged lags the consensus library, so leader and term above
	// may still name this node after Raft deposed it.
	live leadership

	onLeader func(p *partition, term uint64) // called (in a goroutine) when this node becomes leader
	// onCompact is called after an apply that moved the log start: the
	// replica may now drop its log prefix (it must not block: Apply waits).
	onCompact  func(p *partition)
	compactDue bool
	self       consensus.NodeID
}

func newPartition(topic string, index int32, g consensus.GroupID, self consensus.NodeID) *partition {
	p := &partition{
		topic:   topic,
		index:   index,
		group:   g,
		self:    self,
		results: make(map[uint64]applyResult),
		waiters: make(map[chan struct{}]struct{}),
	}
	p.st.producers = make(map[int64]*producerState)
	if topic == OffsetsTopic {
		p.st.groups = newGroupsState()
	}
	return p
}

var _ consensus.StateMachine = (*partition)(nil)

// Apply implements consensus.StateMachine.
func (p *partition) Apply(ctx context.Context, entries []consensus.Entry) error {
	p.mu.Lock()
	for _, e := range entries {
		if len(e.Data) == 0 {
			continue
		}
		var res applyResult
		switch e.Data[0] {
		case cmdRecords:
			res = p.applyRecords(e)
		case cmdEpoch:
			if len(e.Data) >= 9 {
				t := binary.BigEndian.Uint64(e.Data[1:])
				p.st.epochs = append(p.st.epochs, epochStart{term: t, offset: p.st.nextOffset, index: e.Index})
				if t > p.readyTerm {
					p.readyTerm = t
				}
			}
		case cmdTruncate:
			if len(e.Data) >= 9 {
				p.applyTruncate(int64(binary.BigEndian.Uint64(e.Data[1:])))
			}
			res.baseOffset = p.st.startOffset
		default:
			res = applyResult{err: protocol.ErrUnknownServerError, msg: fmt.Sprintf("unknown partition command %d", e.Data[0])}
		}
		p.results[e.Index] = res
		if old := e.Index - resultWindow; e.Index > resultWindow {
			delete(p.results, old)
		}
	}
	p.wakeLocked()
	compact, cb := p.compactDue, p.onCompact
	p.compactDue = false
	p.mu.Unlock()
	if compact && cb != nil {
		cb(p)
	}
	return nil
}

// wakeLocked signals every waiter without blocking; p.mu is held.
func (p *partition) wakeLocked() {
	for w := range p.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// applyRecords assigns offsets to the batches of one entry, or rejects the
// entry whole. It is deterministic: every replica reaches the same answer.
func (p *partition) applyRecords(e consensus.Entry) applyResult {
	data := e.Data[1:]
	type pending struct {
		h   batchHeader
		pos int
	}
	var bs []pending
	for pos := 0; pos < len(data); {
		h, err := parseLoggedBatch(data[pos:])
		if err != nil { // validated before proposing; a replica must agree anyway
			return applyResult{err: batchErrCode(err), msg: err.Error()}
		}
		bs = append(bs, pending{h, pos})
		pos += h.Length
	}
	if len(bs) == 0 {
		return applyResult{err: protocol.ErrCorruptMessage, msg: "empty record set"}
	}
	// Idempotence: check every batch before assigning anything. seen holds
	// the last sequence of earlier batches of the same producer in this entry.
	var seen map[int64]int32
	for i, b := range bs {
		if b.h.ProducerID < 0 {
			continue
		}
		if prev, ok := seen[b.h.ProducerID]; ok {
			if b.h.BaseSequence != nextSeq(prev) {
				return applyResult{err: protocol.ErrOutOfOrderSequenceNumber, msg: fmt.Sprintf("producer %d: expected sequence %d, got %d", b.h.ProducerID, nextSeq(prev), b.h.BaseSequence)}
			}
			seen[b.h.ProducerID] = b.h.lastSequence()
			continue
		}
		if seen == nil {
			seen = make(map[int64]int32)
		}
		seen[b.h.ProducerID] = b.h.lastSequence()
		ps := p.st.producers[b.h.ProducerID]
		if ps == nil {
			continue
		}
		if b.h.ProducerEpoch < ps.epoch {
			return applyResult{err: protocol.ErrInvalidProducerEpoch, msg: fmt.Sprintf("producer %d epoch %d is fenced by epoch %d", b.h.ProducerID, b.h.ProducerEpoch, ps.epoch)}
		}
		if b.h.ProducerEpoch > ps.epoch {
			if b.h.BaseSequence != 0 {
				return applyResult{err: protocol.ErrOutOfOrderSequenceNumber, msg: fmt.Sprintf("producer %d new epoch %d must start at sequence 0, got %d", b.h.ProducerID, b.h.ProducerEpoch, b.h.BaseSequence)}
			}
			continue
		}
		for _, c := range ps.batches {
			if c.firstSeq == b.h.BaseSequence && c.lastSeq == b.h.lastSequence() {
				if i == 0 && len(bs) == 1 {
					return applyResult{baseOffset: c.baseOffset} // a retry: answer with the original offset
				}
				return applyResult{err: protocol.ErrDuplicateSequenceNumber, msg: "duplicate batch within a multi-batch produce"}
			}
		}
		if n := len(ps.batches); n > 0 {
			if want := nextSeq(ps.batches[n-1].lastSeq); b.h.BaseSequence != want {
				return applyResult{err: protocol.ErrOutOfOrderSequenceNumber, msg: fmt.Sprintf("producer %d: expected sequence %d, got %d", b.h.ProducerID, want, b.h.BaseSequence)}
			}
		}
	}
	base := p.st.nextOffset
	for _, b := range bs {
		off := p.st.nextOffset
		last := off + int64(b.h.LastOffsetDelta)
		p.st.batches = append(p.st.batches, batchInfo{
			raftIndex: e.Index, term: e.Term, pos: uint32(b.pos), length: uint32(b.h.Length),
			baseOffset: off, lastOffset: last, maxTS: b.h.MaxTimestamp,
		})
		p.st.nextOffset = last + 1
		if b.h.ProducerID >= 0 {
			ps := p.st.producers[b.h.ProducerID]
			if ps == nil || b.h.ProducerEpoch > ps.epoch {
				ps = &producerState{epoch: b.h.ProducerEpoch}
				p.st.producers[b.h.ProducerID] = ps
			}
			ps.batches = append(ps.batches, seqBatch{raftIndex: e.Index, firstSeq: b.h.BaseSequence, lastSeq: b.h.lastSequence(), baseOffset: off})
			if len(ps.batches) > producerCache {
				ps.batches = ps.batches[1:]
			}
		}
		if p.st.groups != nil {
			p.st.groups.applyBatch(data[b.pos:], b.h)
		}
	}
	return applyResult{baseOffset: base}
}

// applyTruncate moves the log start offset forward to off (DeleteRecords,
// retention) and forgets what lies before the first retained entry, so that
// a replica restored from the snapshot has exactly the same state.
func (p *partition) applyTruncate(off int64) {
	if p.st.groups != nil {
		// __consumer_offsets is never truncated: its materialized group
		// state is rebuilt from the whole log (see docs/ARCHITECTURE.md).
		return
	}
	if off > p.st.nextOffset {
		off = p.st.nextOffset
	}
	if off <= p.st.startOffset {
		return
	}
	p.st.startOffset = off
	// The first batch still holding offsets >= off keeps its whole entry.
	i := sort.Search(len(p.st.batches), func(i int) bool { return p.st.batches[i].lastOffset >= off })
	if i == len(p.st.batches) {
		// Every batch is below off: the log can go up to the last one.
		if i > 0 {
			p.st.snapIndex = p.st.batches[i-1].raftIndex
		}
		p.st.snapOffset = p.st.nextOffset
		p.st.batches = nil
	} else {
		keepIndex := p.st.batches[i].raftIndex
		for i > 0 && p.st.batches[i-1].raftIndex == keepIndex {
			i--
		}
		p.st.snapIndex = keepIndex - 1
		p.st.snapOffset = p.st.batches[i].baseOffset
		p.st.batches = append([]batchInfo(nil), p.st.batches[i:]...)
	}
	p.compactDue = true
	for id, ps := range p.st.producers {
		j := 0
		for j < len(ps.batches) && ps.batches[j].raftIndex <= p.st.snapIndex {
			j++
		}
		ps.batches = ps.batches[j:]
		if len(ps.batches) == 0 {
			delete(p.st.producers, id)
		}
	}
	j := 0
	for j < len(p.st.epochs) && p.st.epochs[j].index <= p.st.snapIndex {
		j++
	}
	p.st.epochs = p.st.epochs[j:]
}

// Snapshot implements consensus.StateMachine: the state as of the entry
// before the first retained one.
func (p *partition) Snapshot(ctx context.Context) (consensus.Snapshot, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	data, err := json.Marshal(snapshotData{NextOffset: p.st.snapOffset, StartOffset: p.st.startOffset})
	if err != nil {
		return consensus.Snapshot{}, err
	}
	return consensus.Snapshot{Index: p.st.snapIndex, Data: data}, nil
}

// Restore implements consensus.StateMachine.
func (p *partition) Restore(ctx context.Context, s consensus.Snapshot) error {
	var d snapshotData
	if len(s.Data) > 0 {
		if err := json.Unmarshal(s.Data, &d); err != nil {
			return fmt.Errorf("partition %s-%d: restore: %w", p.topic, p.index, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st = partitionState{
		nextOffset:  d.NextOffset,
		startOffset: d.StartOffset,
		snapIndex:   s.Index,
		snapOffset:  d.NextOffset,
		producers:   make(map[int64]*producerState),
	}
	if p.topic == OffsetsTopic {
		p.st.groups = newGroupsState()
	}
	clear(p.results)
	return nil
}

// LeaderChanged implements consensus.StateMachine. A new leader serves only
// once it has committed and applied its epoch marker: then everything
// committed by earlier leaders is applied here too.
func (p *partition) LeaderChanged(ctx context.Context, leader consensus.NodeID, term uint64) {
	p.mu.Lock()
	p.leader, p.term = leader, term
	cb := p.onLeader
	p.wakeLocked()
	p.mu.Unlock()
	if leader == p.self && cb != nil {
		cb(p, term)
	}
}

// servingState is what a read or write on the leader needs, taken under
// one lock.
type servingState struct {
	ready       bool
	leader      consensus.NodeID
	term        uint64
	hwm         int64
	startOffset int64
}

// serving says whether this replica serves as leader, with the offsets to
// serve. Ready needs three things: LeaderChanged named this node leader at
// some term, this node applied its epoch marker of that term (so it has
// applied everything earlier leaders committed), and the consensus group
// still leads at that term now. The last is asked after the offsets are
// read: LeaderChanged arrives some time after Raft changed its mind, and
// a replica that voted for a new leader must stop serving at once, or it
// answers with a high watermark below what the new leader already served.
func (p *partition) serving() servingState {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ss := servingState{
		ready:       p.leader == p.self && p.readyTerm == p.term && p.term != 0,
		leader:      p.leader,
		term:        p.term,
		hwm:         p.st.nextOffset,
		startOffset: p.st.startOffset,
	}
	if ss.ready && (p.live == nil || !p.live.Leading(ss.term)) {
		ss.ready = false
	}
	return ss
}

// readBarrier waits until the group confirmed, with a quorum, that it
// still leads at term and applied everything committed before the call
// (consensus.Group.ReadBarrier). A read that must not go back in time
// calls it first and takes its serving state after it returned.
func (p *partition) readBarrier(ctx context.Context, term uint64) error {
	p.mu.RLock()
	l := p.live
	p.mu.RUnlock()
	if l == nil {
		return consensus.ErrNotLeader
	}
	return l.ReadBarrier(ctx, term)
}

// confirmRead runs the read barrier at term (bounded by readBarrierTimeout)
// and returns the serving state read after it, with ok true only if the
// barrier confirmed and this replica still serves at term: the state to
// answer a read with.
func (p *partition) confirmRead(ctx context.Context, term uint64) (ss servingState, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, readBarrierTimeout)
	err := p.readBarrier(ctx, term)
	cancel()
	ss = p.serving()
	return ss, err == nil && ss.ready && ss.term == term
}

// setLive sets the group whose Leading serving asks.
func (p *partition) setLive(l leadership) {
	p.mu.Lock()
	p.live = l
	p.wakeLocked()
	p.mu.Unlock()
}

// takeResult returns and forgets the apply result of entry index.
func (p *partition) takeResult(index uint64) (applyResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[index]
	delete(p.results, index)
	return r, ok
}

// addWaiter registers w to be signalled (without blocking) after every apply.
func (p *partition) addWaiter(w chan struct{}) {
	p.mu.Lock()
	p.waiters[w] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) removeWaiter(w chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, w)
	p.mu.Unlock()
}

// locate returns the batches to read for a fetch at offset off, in order,
// stopping below hwm; the first one contains off.
func (p *partition) locate(off int64, limit int) []batchInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	bs := p.st.batches
	i := sort.Search(len(bs), func(i int) bool { return bs[i].lastOffset >= off })
	j := i
	for j < len(bs) && j-i < limit {
		j++
	}
	return append([]batchInfo(nil), bs[i:j]...)
}

// offsetForTime returns the first batch whose max timestamp is >= ts.
func (p *partition) batchForTime(ts int64) (batchInfo, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, b := range p.st.batches {
		if b.lastOffset >= p.st.startOffset && b.maxTS >= ts {
			return b, true
		}
	}
	return batchInfo{}, false
}

// maxTimestamp returns the offset and timestamp of the batch with the
// largest max timestamp (ListOffsets -3).
func (p *partition) maxTimestamp() (int64, int64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var best batchInfo
	found := false
	for _, b := range p.st.batches {
		if b.lastOffset >= p.st.startOffset && (!found || b.maxTS > best.maxTS) {
			best, found = b, true
		}
	}
	return best.lastOffset, best.maxTS, found
}

// nextSeq is the sequence after s; sequences wrap to 0 after MaxInt32.
func nextSeq(s int32) int32 {
	if s == 1<<31-1 {
		return 0
	}
	return s + 1
}

// waitServing waits (up to d) for a replica that leads, or is about to,
// to become ready to serve: a new leader needs its epoch marker applied,
// which takes one round trip. Clients told NOT_LEADER_OR_FOLLOWER would
// otherwise wait for a metadata refresh (seconds, for some clients).
func (p *partition) waitServing(ctx context.Context, d time.Duration) servingState {
	ss := p.serving()
	if ss.ready || ss.leader != p.self && ss.leader != 0 {
		return ss
	}
	wake := make(chan struct{}, 1)
	p.addWaiter(wake)
	defer p.removeWaiter(wake)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		ss = p.serving()
		if ss.ready || ss.leader != p.self && ss.leader != 0 {
			return ss
		}
		select {
		case <-wake:
		case <-t.C:
			return p.serving()
		case <-ctx.Done():
			return p.serving()
		}
	}
}

// storedGroup returns a copy of what this __consumer_offsets partition's
// log says about a group, nil if nothing (or not an offsets partition).
func (p *partition) storedGroup(name string) *storedGroup {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st.groups == nil {
		return nil
	}
	return p.st.groups.groups[name].clone()
}

// storedGroupNames lists the groups this __consumer_offsets partition's
// log knows, sorted.
func (p *partition) storedGroupNames() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.st.groups == nil {
		return nil
	}
	names := make([]string, 0, len(p.st.groups.groups))
	for n := range p.st.groups.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
