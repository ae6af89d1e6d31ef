package etcd

import (
	"context"
	"slices"
	"sync"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport"
	"github.com/chronik-go/chronik/core/storage"
)

// work is one group's share of a worker's batch.
type work struct {
	g        *group
	in       inbox
	rd       raft.Ready
	hasReady bool
	accepted []*proposal // proposals raft appended this round, in order
	halted   bool
	// what the storage write will make durable
	hs    *pb.HardState
	snap  *pb.Snapshot
	snapB []byte
}

// process is one worker round over a batch of groups: feed each RawNode its
// queued work and collect the Readys; persist them all in one Store.Write;
// send all messages; apply committed entries; Advance. See the package doc.
//
// Groups whose Ready needs no fsync (no entries, snapshot, term or vote:
// heartbeats, commit updates, idle ticks) are finished first, with a write
// that does not sync, and let go of before the fsync of the others, so that
// their ticks and heartbeats do not wait behind a slow disk.
func (e *Engine) process(h *held) {
	batch := h.gs
	ws := make([]work, 0, len(batch))
	for _, g := range batch {
		g.mu.Lock()
		if g.stopped {
			g.mu.Unlock()
			continue
		}
		w := work{g: g, in: g.in}
		g.in = inbox{}
		g.mu.Unlock()
		if w.in.stop {
			g.halt(w.in.stopErr, &w)
			continue
		}
		g.step(&w)
		if g.rn.HasReady() {
			w.rd = g.rn.Ready()
			w.hasReady = true
			if w.rd.SoftState != nil || !raft.IsEmptyHardState(w.rd.HardState) {
				// The role or term may have changed: publish it before
				// this round sends anything (a vote for another node
				// leaves only after this).
				bs := g.rn.BasicStatus()
				g.publishLead(&bs)
			}
		}
		g.match(&w)
		ws = append(ws, w)
	}

	// Messages that promise nothing about this node's disk (appends and
	// heartbeats to followers, vote requests, heartbeat responses) leave
	// before the write: a leader writes its entries in parallel with its
	// followers (Raft thesis 10.2.1) and a long fsync does not hold up
	// heartbeats. Acknowledgements of entries and votes wait for it.
	e.send(ws, false)
	var light, heavy []work
	for _, w := range ws {
		if w.hasReady && (len(w.rd.Entries) > 0 || !raft.IsEmptySnap(w.rd.Snapshot) || w.rd.MustSync) {
			heavy = append(heavy, w)
		} else {
			light = append(light, w)
		}
	}
	if len(light) > 0 && e.persist(light) {
		e.send(light, true)
		e.finish(light)
		for i := range light {
			h.release(light[i].g)
		}
	}
	if len(heavy) > 0 && e.persist(heavy) {
		e.send(heavy, true)
		e.finish(heavy)
	}
}

// finish applies and advances each persisted group, then runs after.
// Groups with entries to apply do so concurrently when there are several:
// each calls its own state machine, which may be slow to answer (a
// broker across a process boundary, when the engine runs as a plugin),
// and one group's apply need not wait for another's.
func (e *Engine) finish(ws []work) {
	var busy []*work
	for i := range ws {
		w := &ws[i]
		if w.hasReady && !w.halted && (len(w.rd.CommittedEntries) > 0 || !raft.IsEmptySnap(w.rd.Snapshot)) {
			busy = append(busy, w)
		}
	}
	if len(busy) < 2 {
		for i := range ws {
			e.finishOne(&ws[i])
		}
		return
	}
	var wg sync.WaitGroup
	for _, w := range busy {
		wg.Go(func() { e.finishOne(w) })
	}
	for i := range ws {
		if w := &ws[i]; !slices.Contains(busy, w) {
			e.finishOne(w)
		}
	}
	wg.Wait()
}

func (e *Engine) finishOne(w *work) {
	if w.halted {
		return
	}
	g := w.g
	if w.hasReady {
		if err := g.apply(w); err != nil {
			e.log.Error("etcd: state machine failed; stopping group", "group", uint64(g.id), "err", err)
			g.halt(consensus.Errorf(consensus.CodeInternal, "group %d: apply: %w", g.id, err), w)
			return
		}
		g.readStates(w.rd.ReadStates)
		g.rn.Advance(w.rd)
	}
	g.after()
}

// step feeds the group's inbox to its RawNode.
func (g *group) step(w *work) {
	in := &w.in
	rn := g.rn
	if in.wake {
		g.quiesced.Store(false)
	}
	if in.tick && !g.quiesced.Load() {
		rn.Tick()
	}
	for _, m := range in.msgs {
		g.receive(m)
	}
	for _, to := range in.unreachable {
		rn.ReportUnreachable(to)
	}
	for _, s := range in.snaps {
		rn.ReportSnapshot(s.to, s.status)
	}
	if len(in.transfers) > 0 || len(in.props) > 0 {
		bs := rn.BasicStatus()
		leader := bs.RaftState == raft.StateLeader
		for _, to := range in.transfers {
			if leader {
				g.quiesced.Store(false)
				rn.TransferLeader(to)
			}
		}
		for _, p := range in.props {
			if !leader {
				p.finish(consensus.NotLeader(consensus.NodeID(bs.Lead)))
				continue
			}
			g.quiesced.Store(false)
			var err error
			if p.cc != nil {
				err = rn.ProposeConfChange(p.cc)
			} else {
				err = rn.Propose(p.data)
			}
			if err != nil {
				p.finish(consensus.Errorf(consensus.CodeDropped, "group %d: %w", g.id, err))
				continue
			}
			w.accepted = append(w.accepted, p)
		}
	}
	for _, c := range in.compacts {
		c.done <- g.compact(c.ctx)
	}
	if len(in.reads) > 0 {
		g.reads.queue = append(g.reads.queue, in.reads...)
		g.issueRead()
	}
	w.in = inbox{} // all settled or handed to raft
}

// match pairs the proposals raft accepted this round with the entries it
// appended for them: the last len(accepted) entries of the Ready, in order
// (raft appends a leader's proposals at the end of its log, and nothing
// else was appended after them before Ready).
func (g *group) match(w *work) {
	k := len(w.accepted)
	if k == 0 {
		return
	}
	ents := w.rd.Entries
	if len(ents) < k {
		for _, p := range w.accepted {
			p.finish(consensus.Errorf(consensus.CodeDropped, "group %d: proposal not appended", g.id))
		}
		w.accepted = nil
		return
	}
	ents = ents[len(ents)-k:]
	for i, p := range w.accepted {
		e := ents[i]
		ok := false
		if p.cc != nil {
			ok = e.GetType() == pb.EntryConfChange
		} else {
			ok = e.GetType() == pb.EntryNormal && len(e.GetData()) == len(p.data)
		}
		if !ok {
			// Raft turns a conf change it refuses (one is already pending)
			// into an empty entry.
			p.finish(consensus.Errorf(consensus.CodeDropped, "group %d: refused by raft (another membership change pending?)", g.id))
			continue
		}
		p.index, p.term = e.GetIndex(), e.GetTerm()
		g.pending[p.index] = p
	}
	w.accepted = nil
}

// persist writes every group's Ready in one Store.Write. On failure it
// stops every group of the batch and returns false.
func (e *Engine) persist(ws []work) bool {
	var gws []storage.GroupWrite
	sync := false
	for i := range ws {
		w := &ws[i]
		if !w.hasReady {
			continue
		}
		rd := &w.rd
		gw := storage.GroupWrite{Group: w.g.id}
		w.hs, w.snap, w.snapB = w.g.hs, w.g.rs.snap, w.g.rs.snapB
		dirty := false
		if !raft.IsEmptySnap(rd.Snapshot) {
			b, err := proto.Marshal(rd.Snapshot)
			if err != nil {
				w.g.halt(consensus.Errorf(consensus.CodeInternal, "group %d: marshal snapshot: %w", w.g.id, err), w)
				continue
			}
			md := rd.Snapshot.GetMetadata()
			gw.Reset = &storage.Position{Index: md.GetIndex(), Term: md.GetTerm()}
			w.snap, w.snapB = rd.Snapshot, b
			dirty, sync = true, true
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			w.hs = rd.HardState
			dirty = true
		}
		if dirty {
			blob, err := encodeState(w.hs, w.snapB)
			if err != nil {
				w.g.halt(consensus.Errorf(consensus.CodeInternal, "group %d: encode state: %w", w.g.id, err), w)
				continue
			}
			gw.State = blob
		}
		if len(rd.Entries) > 0 {
			gw.Entries = make([]storage.Entry, len(rd.Entries))
			for j, ent := range rd.Entries {
				gw.Entries[j] = fromRaft(ent)
			}
		}
		sync = sync || rd.MustSync
		if gw.Reset != nil || gw.State != nil || len(gw.Entries) > 0 {
			gws = append(gws, gw)
		}
	}
	if len(gws) > 0 {
		if sync {
			e.stall.begin()
		}
		err := e.store.Write(e.ctx, gws, sync)
		if sync {
			e.stall.end()
		}
		if err != nil {
			e.log.Error("etcd: storage write failed; stopping groups", "groups", len(gws), "err", err)
			for i := range ws {
				if !ws[i].halted {
					ws[i].g.halt(errStorage(err), &ws[i])
				}
			}
			return false
		}
	}
	for i := range ws {
		w := &ws[i]
		if w.hasReady && !w.halted {
			w.g.hs = w.hs
			if w.snap != w.g.rs.snap {
				w.g.rs.setSnapshot(w.snap, w.snapB)
			}
		}
	}
	return true
}

// needsDurability reports whether m may leave only once the Ready it came
// with is persisted: the responses that vote for a candidate or acknowledge
// appended entries (raft's msgsAfterAppend; with synchronous storage writes
// the RawNode hands them out in the same Ready as everything else).
// Snapshots are sent late too, as before.
func needsDurability(m *pb.Message) bool {
	switch m.GetType() {
	case pb.MsgAppResp, pb.MsgVoteResp, pb.MsgPreVoteResp, pb.MsgSnap:
		return true
	}
	return false
}

// send hands the messages of the batch that need durability (persisted
// true, after the storage write) or not (false, before it) to the
// transport, one call per peer; a peer that refuses is reported unreachable
// to each group. A group's messages keep their order within each half, and
// the late half of a round leaves before the early half of the next.
func (e *Engine) send(ws []work, persisted bool) {
	var out map[uint64][]transport.Message
	var from map[uint64][]*group
	for i := range ws {
		w := &ws[i]
		if !w.hasReady || w.halted {
			continue
		}
		for _, m := range w.rd.Messages {
			if needsDurability(m) != persisted {
				continue
			}
			if m.GetType() == pb.MsgSnap {
				e.sendSnapshot(w.g, m)
				continue
			}
			data, err := proto.Marshal(m)
			if err != nil {
				e.log.Error("etcd: marshal message", "group", uint64(w.g.id), "err", err)
				continue
			}
			if out == nil {
				out, from = make(map[uint64][]transport.Message), make(map[uint64][]*group)
			}
			to := m.GetTo()
			out[to] = append(out[to], transport.Message{Group: w.g.id, Data: data})
			if gs := from[to]; len(gs) == 0 || gs[len(gs)-1] != w.g {
				from[to] = append(gs, w.g)
			}
		}
	}
	for to, msgs := range out {
		if !e.tr.Send(consensus.NodeID(to), msgs) {
			for _, g := range from[to] {
				g.rn.ReportUnreachable(to)
			}
		}
	}
}

// apply restores a received snapshot and applies committed entries, then
// settles the proposals they decide.
func (g *group) apply(w *work) error {
	ctx := g.e.ctx
	rd := &w.rd
	if !raft.IsEmptySnap(rd.Snapshot) {
		md := rd.Snapshot.GetMetadata()
		if err := g.sm.Restore(ctx, consensus.Snapshot{Index: md.GetIndex(), Data: rd.Snapshot.GetData()}); err != nil {
			return err
		}
		g.applied = md.GetIndex()
		g.confs = []confAt{{index: md.GetIndex(), cs: md.GetConfState()}}
		for i, p := range g.pending {
			if i <= md.GetIndex() {
				delete(g.pending, i)
				p.finish(&consensus.Error{Code: consensus.CodeTimeout, Err: errUnknownOutcome, Msg: errUnknownOutcome.Error()})
			}
		}
	}
	if len(rd.CommittedEntries) == 0 {
		return nil
	}
	var ents []consensus.Entry
	var done []*proposal
	for _, e := range rd.CommittedEntries {
		idx := e.GetIndex()
		p := g.pending[idx]
		if p != nil {
			delete(g.pending, idx)
			if p.term != e.GetTerm() {
				p.finish(consensus.Errorf(consensus.CodeDropped, "group %d: entry %d was replaced (leader change)", g.id, idx))
				p = nil
			}
		}
		switch e.GetType() {
		case pb.EntryNormal:
			if len(e.GetData()) > 0 {
				ents = append(ents, consensus.Entry{Index: idx, Term: e.GetTerm(), Data: e.GetData()})
			}
		case pb.EntryConfChange:
			var cc pb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return err
			}
			g.applyConfChange(idx, &cc)
		case pb.EntryConfChangeV2:
			var cc pb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return err
			}
			g.applyConfChange(idx, &cc)
		}
		if p != nil {
			done = append(done, p)
		}
	}
	if len(ents) > 0 {
		if err := g.sm.Apply(ctx, ents); err != nil {
			for _, p := range done {
				p.finish(consensus.Errorf(consensus.CodeInternal, "group %d: apply: %w", g.id, err))
			}
			return err
		}
	}
	g.applied = rd.CommittedEntries[len(rd.CommittedEntries)-1].GetIndex()
	for _, p := range done {
		p.finish(nil)
	}
	return nil
}

func (g *group) applyConfChange(idx uint64, cc pb.ConfChangeI) {
	cs := g.rn.ApplyConfChange(cc)
	g.confs = append(g.confs, confAt{index: idx, cs: cs})
}

// confAt returns the conf state in force at index i.
func (g *group) confAt(i uint64) *pb.ConfState {
	cs := g.confs[0].cs
	for _, c := range g.confs {
		if c.index > i {
			break
		}
		cs = c.cs
	}
	return cs
}

// compact runs one Compact request: snapshot the state machine, persist the
// snapshot in the state blob and drop the log up to its index.
func (g *group) compact(ctx context.Context) error {
	s, err := g.sm.Snapshot(ctx)
	if err != nil {
		return consensus.Errorf(consensus.CodeInternal, "group %d: snapshot: %w", g.id, err)
	}
	cur := g.rs.snap.GetMetadata().GetIndex()
	if s.Index <= cur {
		return nil
	}
	if s.Index > g.applied {
		return consensus.Errorf(consensus.CodeInvalid, "group %d: snapshot index %d is past applied index %d", g.id, s.Index, g.applied)
	}
	term, err := g.rs.Term(s.Index)
	if err != nil {
		return errStorage(err)
	}
	cs := g.confAt(s.Index)
	snap := &pb.Snapshot{Data: s.Data, Metadata: &pb.SnapshotMetadata{Index: new(s.Index), Term: new(term), ConfState: cs}}
	b, err := proto.Marshal(snap)
	if err != nil {
		return consensus.Errorf(consensus.CodeInternal, "group %d: %w", g.id, err)
	}
	blob, err := encodeState(g.hs, b)
	if err != nil {
		return consensus.Errorf(consensus.CodeInternal, "group %d: %w", g.id, err)
	}
	if err := g.e.store.Write(ctx, []storage.GroupWrite{{Group: g.id, State: blob, TruncBefore: s.Index + 1}}, true); err != nil {
		return errStorage(err)
	}
	g.rs.setSnapshot(snap, b)
	keep := []confAt{{index: s.Index, cs: cs}}
	for _, c := range g.confs {
		if c.index > s.Index {
			keep = append(keep, c)
		}
	}
	g.confs = keep
	return nil
}

// after runs once the round's Ready is done: report leader changes, update
// quiescence and the published status, and reschedule if raft has more.
func (g *group) after() {
	bs := g.rn.BasicStatus()
	// Leading agrees with what LeaderChanged is about to report: a node
	// that won its election when the round delivered its own vote (after
	// the append) leads before this call, not only after the next round.
	g.publishLead(&bs)
	if bs.Lead != g.reported.lead || bs.GetTerm() != g.reported.term {
		g.reported.lead, g.reported.term = bs.Lead, bs.GetTerm()
		g.sm.LeaderChanged(g.e.ctx, consensus.NodeID(bs.Lead), bs.GetTerm())
	}
	if g.quiesced.Load() {
		q := g.qLeader.Load()
		self := uint64(g.e.node)
		if (q == self && bs.RaftState != raft.StateLeader) || (q != self && (bs.RaftState != raft.StateFollower || bs.Lead != q)) {
			g.quiesced.Store(false)
		}
	}
	if bs.RaftState == raft.StateFollower && bs.Lead == 0 && bs.Applied == bs.GetCommit() && g.soleVoter() {
		// Nobody else can lead or vote: campaign now rather than after an
		// election timeout (a one-broker cluster starts every new group).
		// Raft refuses while conf changes are unapplied, hence the check.
		_ = g.rn.Campaign()
		bs = g.rn.BasicStatus()
	}
	g.settleReads(&bs)
	g.maybeQuiesceLeader(&bs)
	g.publishLead(&bs)
	g.setStatus(g.makeStatus(&bs))
	if g.rn.HasReady() {
		g.e.sched.enqueue(g)
	}
}

// soleVoter reports whether this node is the group's only voter.
func (g *group) soleVoter() bool {
	v := g.confs[len(g.confs)-1].cs.GetVoters()
	return len(v) == 1 && v[0] == uint64(g.e.node) && len(g.confs[len(g.confs)-1].cs.GetVotersOutgoing()) == 0
}

func (g *group) makeStatus(bs *raft.BasicStatus) consensus.Status {
	if bs == nil {
		b := g.rn.BasicStatus()
		bs = &b
	}
	cs := g.confs[len(g.confs)-1].cs
	s := consensus.Status{
		Group:    g.id,
		Node:     g.e.node,
		Term:     bs.GetTerm(),
		Leader:   consensus.NodeID(bs.Lead),
		Commit:   bs.GetCommit(),
		Applied:  g.applied,
		Voters:   toNodes(cs.GetVoters()),
		Learners: toNodes(cs.GetLearners()),
	}
	switch bs.RaftState {
	case raft.StateLeader:
		s.Role = consensus.RoleLeader
	case raft.StateCandidate, raft.StatePreCandidate:
		s.Role = consensus.RoleCandidate
	default:
		s.Role = consensus.RoleFollower
		for _, l := range cs.GetLearners() {
			if l == uint64(g.e.node) {
				s.Role = consensus.RoleLearner
			}
		}
	}
	return s
}

func toNodes(ids []uint64) []consensus.NodeID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]consensus.NodeID, len(ids))
	for i, id := range ids {
		out[i] = consensus.NodeID(id)
	}
	return out
}

// halt stops the group for good with err: every waiting call gets err.
// Only the worker holding the group calls it.
func (g *group) halt(err error, w *work) {
	w.halted = true
	g.leadTerm.Store(0)
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	in := g.in
	g.in = inbox{}
	g.mu.Unlock()
	for _, q := range []*inbox{&w.in, &in} {
		for _, p := range q.props {
			p.finish(err)
		}
		for _, c := range q.compacts {
			c.done <- err
		}
		for _, r := range q.reads {
			r.finish(err)
		}
	}
	g.failReads(err)
	for _, p := range w.accepted {
		p.finish(err)
	}
	w.accepted = nil
	for i, p := range g.pending {
		delete(g.pending, i)
		p.finish(err)
	}
	g.e.removeGroup(g)
	close(g.stoppedC)
}
