package etcd

import (
	"context"
	"encoding/binary"

	"go.etcd.io/raft/v3"

	"github.com/chronik-go/chronik/core/consensus"
)

// readReq is a ReadBarrier call waiting for a round.
type readReq struct {
	term uint64
	done chan struct{} // closed once err is final
	err  error
}

func (r *readReq) finish(err error) {
	r.err = err
	close(r.done)
}

// readRound is one ReadIndex request (ReadOnlySafe: a heartbeat round with
// a quorum), shared by every call that had arrived when it was issued.
type readRound struct {
	rctx  []byte // the request context raft hands back in its ReadState
	term  uint64
	index uint64 // the read index, once confirmed
	reqs  []*readReq
}

// reads is a group's ReadBarrier state; only the worker holding the group
// touches it. At most one round is in flight: calls arriving meanwhile wait
// in queue for the next one, so that every caller's round started after it
// arrived, and a burst of calls costs two rounds at most.
type reads struct {
	queue    []*readReq   // arrived, not issued yet
	cur      *readRound   // issued, not confirmed yet
	applying []*readRound // confirmed, waiting for the read index to be applied
	seq      uint64       // request contexts issued
}

func (rs *reads) idle() bool { return len(rs.queue) == 0 && rs.cur == nil && len(rs.applying) == 0 }

// ReadBarrier confirms with a quorum that this node still leads at term
// (raft's ReadIndex, ReadOnlySafe) and waits until it applied the read
// index. See consensus.Group.
func (g *group) ReadBarrier(ctx context.Context, term uint64) error {
	if !g.Leading(term) {
		return g.notLeader()
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	r := &readReq{term: term, done: make(chan struct{})}
	if err := g.post(func(in *inbox) { in.reads = append(in.reads, r) }); err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-g.stoppedC:
		select {
		case <-r.done:
			return r.err
		default:
		}
		return consensus.ErrStopped
	}
}

// notLeader is CodeNotLeader with the leader this node last published
// (none if that is this node: it leads at another term).
func (g *group) notLeader() error {
	l := g.Status().Leader
	if l == g.e.node {
		l = 0
	}
	return consensus.NotLeader(l)
}

// issueRead starts a round for the queued calls if none is in flight;
// calls for a term this node does not lead at fail at once. Only the
// worker holding the group calls it, before taking the Ready (the round's
// heartbeats leave in it) or at the end of the round (they leave in the
// next one: after reschedules the group).
func (g *group) issueRead() {
	rs := &g.reads
	if rs.cur != nil || len(rs.queue) == 0 {
		return
	}
	bs := g.rn.BasicStatus()
	var lead uint64
	if bs.Lead != uint64(g.e.node) {
		lead = bs.Lead
	}
	var reqs []*readReq
	for _, r := range rs.queue {
		if bs.RaftState != raft.StateLeader || bs.GetTerm() != r.term {
			r.finish(consensus.NotLeader(consensus.NodeID(lead)))
			continue
		}
		reqs = append(reqs, r)
	}
	rs.queue = nil
	if len(reqs) == 0 {
		return
	}
	rs.seq++
	rs.cur = &readRound{rctx: binary.BigEndian.AppendUint64(nil, rs.seq), term: bs.GetTerm(), reqs: reqs}
	g.readRounds.Add(1)
	// A quiesced leader does not tick: it would not repeat the round's
	// heartbeat if one is lost. It may quiesce again once reads are done.
	g.quiesced.Store(false)
	g.rn.ReadIndex(rs.cur.rctx)
}

// readStates takes the read indexes raft confirmed in a Ready.
func (g *group) readStates(states []raft.ReadState) {
	rs := &g.reads
	for _, s := range states {
		if rs.cur != nil && string(s.RequestCtx) == string(rs.cur.rctx) {
			rs.cur.index = s.Index
			rs.applying = append(rs.applying, rs.cur)
			rs.cur = nil
		}
	}
}

// settleReads completes the confirmed rounds whose read index is applied,
// fails the round in flight if this node no longer leads at its term (raft
// drops a read request when it steps down or changes term), and issues the
// next round. Only the worker holding the group calls it, after the apply.
func (g *group) settleReads(bs *raft.BasicStatus) {
	rs := &g.reads
	keep := rs.applying[:0]
	for _, r := range rs.applying {
		if r.index > g.applied {
			keep = append(keep, r)
			continue
		}
		for _, q := range r.reqs {
			q.finish(nil)
		}
	}
	clear(rs.applying[len(keep):])
	rs.applying = keep
	if c := rs.cur; c != nil && (bs.RaftState != raft.StateLeader || bs.GetTerm() != c.term) {
		var lead uint64
		if bs.Lead != uint64(g.e.node) {
			lead = bs.Lead
		}
		for _, q := range c.reqs {
			q.finish(consensus.NotLeader(consensus.NodeID(lead)))
		}
		rs.cur = nil
	}
	g.issueRead()
}

// failReads fails every call the worker holds (the group halts).
func (g *group) failReads(err error) {
	rs := &g.reads
	for _, q := range rs.queue {
		q.finish(err)
	}
	rounds := rs.applying
	if rs.cur != nil {
		rounds = append(rounds, rs.cur)
	}
	for _, r := range rounds {
		for _, q := range r.reqs {
			q.finish(err)
		}
	}
	*rs = reads{seq: rs.seq}
}
