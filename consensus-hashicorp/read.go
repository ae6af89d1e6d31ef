package hashicorp

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

// acks records, per follower, the newest append or heartbeat it answered
// at the sender's term, for ReadBarrier. Requests are numbered as they
// leave: a round counts a follower only for an answer to a request sent
// after the round began. The library's VerifyLeader alone does not give
// that: it counts any answer that arrives after the call, including one to
// a heartbeat sent before it (a leader stopped by SIGSTOP finds its
// followers' old answers waiting when it resumes), and idleAppends answers
// some appends without a round trip.
type acks struct {
	seq  atomic.Uint64 // requests numbered so far
	by   peerMarks     // per follower: the newest request it answered
	wake wakeup        // notified on every answer
}

// next numbers a request about to leave.
func (a *acks) next() uint64 { return a.seq.Add(1) }

// note records that target answered request seq at term (its term was
// the request's: it took the sender for the leader of that term).
func (a *acks) note(target raft.ServerAddress, term, seq uint64) {
	a.by.note(target, term, seq)
	a.wake.notify()
}

// wait returns a channel closed on the next ack.
func (a *acks) wait() <-chan struct{} { return a.wake.wait() }

// quorum reports whether a majority of voters (self counting) answered,
// at term, a request numbered after fence.
func (a *acks) quorum(voters []raft.ServerAddress, self raft.ServerAddress, term, fence uint64) bool {
	n := 0
	for _, v := range voters {
		if v == self || a.by.at(v, term) > fence {
			n++
		}
	}
	return n > len(voters)/2
}

// peerMarks records, per follower, the highest number noted for it at the
// newest term noted: the newest request it answered (acks), the last index
// its log shares with this leader's (vtrans.match).
type peerMarks struct {
	mu sync.Mutex
	by map[raft.ServerAddress]peerMark
}

type peerMark struct{ term, n uint64 }

func (m *peerMarks) note(target raft.ServerAddress, term, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.by == nil {
		m.by = make(map[raft.ServerAddress]peerMark)
	}
	if cur := m.by[target]; cur.term < term || cur.term == term && cur.n < n {
		m.by[target] = peerMark{term, n}
	}
}

// at is target's number at term; 0 when none is noted at that term.
func (m *peerMarks) at(target raft.ServerAddress, term uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.by[target]; cur.term == term {
		return cur.n
	}
	return 0
}

// wakeup hands out a channel that the next notify closes: for waiters on
// an event (an ack, an apply) that re-check their condition when woken.
type wakeup struct {
	mu sync.Mutex
	c  chan struct{}
}

func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.c == nil {
		w.c = make(chan struct{})
	}
	return w.c
}

func (w *wakeup) notify() {
	w.mu.Lock()
	if w.c != nil {
		close(w.c)
		w.c = nil
	}
	w.mu.Unlock()
}

// readRound is one confirmation round shared by the ReadBarrier calls that
// had arrived when it started.
type readRound struct {
	done chan struct{} // closed once term and err are final
	term uint64        // the term confirmed
	err  error
}

// ReadBarrier confirms with a quorum that this node still leads at term
// and waits until the state machine applied everything committed before
// the call. See consensus.Group and confirmRead.
func (g *group) ReadBarrier(ctx context.Context, term uint64) error {
	if !g.Leading(term) {
		return g.notLeader()
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	// Join the next round: one starts when none is running, else the
	// callers gather for the one after (the running one may have begun
	// before they arrived).
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return consensus.ErrStopped
	}
	if g.readNext == nil {
		g.readNext = &readRound{done: make(chan struct{})}
	}
	r := g.readNext
	if g.readCur == nil {
		g.startReadLocked()
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		if r.err == nil && r.term != term {
			return g.notLeader()
		}
		return r.err
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-g.stopC:
		return consensus.ErrStopped
	}
}

// startReadLocked runs the gathered round; g.mu is held and the group is
// not stopped (so the wait group may grow).
func (g *group) startReadLocked() {
	r := g.readNext
	g.readNext, g.readCur = nil, r
	g.readRounds.Add(1)
	g.wg.Go(func() {
		r.term, r.err = g.confirmRead()
		close(r.done)
		g.mu.Lock()
		g.readCur = nil
		if g.readNext != nil && !g.stopped {
			g.startReadLocked()
		}
		g.mu.Unlock()
	})
}

func (g *group) notLeader() error {
	l, _, _, _ := g.view()
	if l == g.e.node {
		l = 0
	}
	return consensus.NotLeader(l)
}

// confirmRead is one round of ReadBarrier at the library's current term:
//
//  1. Number the requests from here on (fence) and note the read index:
//     the commit index, or the first index of this leader's term if that
//     is not committed yet (a new leader's commit index may lag what its
//     predecessors committed until its first entry commits).
//  2. VerifyLeader, which makes the library heartbeat every follower now;
//     it fails if one answers with a later term.
//  3. Wait until a majority of voters answered, at this term, a request
//     sent after the fence, and the library still leads at the term.
//  4. Wait until the state machine applied the read index (entries the
//     FSM is not given, no-ops, count as applied).
func (g *group) confirmRead() (uint64, error) {
	term := g.r.CurrentTerm()
	if !g.Leading(term) {
		return 0, g.notLeader()
	}
	fence := g.vt.acks.next()
	readIndex := g.r.CommitIndex()
	if err := g.waitFuture(g.ctx, g.r.VerifyLeader()); err != nil {
		if g.ctx.Err() != nil {
			return 0, consensus.ErrStopped // g.ctx ends only with the group
		}
		if c := consensus.CodeOf(err); c == consensus.CodeNotLeader || c == consensus.CodeStopped {
			return 0, err
		}
		return 0, g.notLeader() // leadership lost during the round
	}
	self := addr(g.e.node)
	tick := time.NewTicker(max(g.e.cfg.CommitTimeout, time.Millisecond))
	defer tick.Stop()
	confirmed := false
	for {
		_, _, changed, stopped := g.view()
		if stopped {
			return 0, consensus.ErrStopped
		}
		if !g.Leading(term) {
			return 0, g.notLeader()
		}
		ackC, applyC := g.vt.acks.wait(), g.applyWake.wait()
		if !confirmed {
			var voters []raft.ServerAddress
			for _, s := range g.r.GetConfiguration().Configuration().Servers {
				if s.Suffrage == raft.Voter {
					voters = append(voters, s.Address)
				}
			}
			confirmed = g.vt.acks.quorum(voters, self, term, fence)
		}
		if confirmed {
			g.mu.Lock()
			start, startTerm := g.leadStart, g.leadStartTerm
			g.mu.Unlock()
			if startTerm == term {
				if ri := max(readIndex, start); g.r.CommitIndex() >= ri && g.appliedThrough(ri) {
					return term, nil
				}
			}
		}
		select {
		case <-ackC:
		case <-applyC:
		case <-changed:
		case <-tick.C: // a no-op committing wakes nothing else
		case <-g.stopC:
			return 0, consensus.ErrStopped
		}
	}
}

// appliedThrough reports whether the state machine reflects every entry
// up to index: it applied them, or those it did not apply are not
// proposals (the library does not give no-ops to the FSM).
func (g *group) appliedThrough(index uint64) bool {
	applied := g.applied.Load()
	if applied >= index {
		return true
	}
	ents, err := g.st.log.Entries(applied+1, index+1, 0)
	if err != nil || uint64(len(ents)) != index-applied {
		return false
	}
	for _, e := range ents {
		if e.Kind == storage.KindNormal {
			return false
		}
	}
	return true
}
