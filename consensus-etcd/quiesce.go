package etcd

import (
	"bytes"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport"
)

// quiesceCtx marks the heartbeat a leader sends when its group goes quiet.
var quiesceCtx = []byte("chronik/quiesce")

// receive steps one message from a peer, handling quiescence:
//   - a quiesced leader wakes on anything but a heartbeat response (a
//     restarted or partitioned follower campaigns, and must be answered);
//   - a quiesced follower wakes on anything from its leader except the
//     quiesce heartbeat itself (messages from other nodes are stepped but
//     do not wake it: raft ignores their votes while its leader is live);
//   - a follower quiesces on the leader's quiesce heartbeat when it agrees
//     on leader, term and commit.
func (g *group) receive(m *pb.Message) {
	quiesce := m.GetType() == pb.MsgHeartbeat && bytes.Equal(m.GetContext(), quiesceCtx)
	if quiesce {
		m.Context = nil
	}
	if g.quiesced.Load() {
		q := g.qLeader.Load()
		switch {
		case q == uint64(g.e.node):
			if m.GetType() != pb.MsgHeartbeatResp {
				g.quiesced.Store(false)
			}
		case m.GetFrom() == q && !quiesce:
			g.quiesced.Store(false)
		}
	}
	_ = g.rn.Step(m)
	if quiesce && g.e.cfg.Quiesce {
		bs := g.rn.BasicStatus()
		if bs.RaftState == raft.StateFollower && bs.Lead == m.GetFrom() && bs.GetTerm() == m.GetTerm() && bs.GetCommit() == m.GetCommit() {
			g.qLeader.Store(m.GetFrom())
			g.quiesced.Store(true)
		}
	}
}

// maybeQuiesceLeader quiesces a leader with nothing to do: everything
// committed and applied, no proposal waiting, and every follower it can
// hear from holding the whole log, a quorum of voters among them. It tells
// those followers with a marked heartbeat.
//
// A caught-up follower counts towards the quorum only if its node was heard
// from within an election timeout: a leader that cannot hear a quorum must
// keep ticking so that CheckQuorum can depose it. (Counting every caught-up
// follower made such a leader, woken by the ticker because quorumLive
// failed, quiesce again in the same round: it never ticked, so it never
// stepped down. With only the links towards it cut, its followers still
// heard its node and stayed quiesced too, and the group went on naming a
// leader that could commit nothing until a proposal woke it.)
func (g *group) maybeQuiesceLeader(bs *raft.BasicStatus) {
	e := g.e
	if !e.cfg.Quiesce || g.quiesced.Load() || bs.RaftState != raft.StateLeader ||
		bs.LeadTransferee != 0 || bs.Applied != bs.GetCommit() || g.applied != bs.GetCommit() ||
		len(g.pending) > 0 || !g.reads.idle() || g.rn.HasReady() {
		return
	}
	last, err := g.rs.LastIndex()
	if err != nil || last != bs.GetCommit() {
		return
	}
	g.mu.Lock()
	busy := len(g.in.props) > 0 || len(g.in.msgs) > 0 || len(g.in.transfers) > 0 || len(g.in.reads) > 0
	g.mu.Unlock()
	if busy {
		return
	}
	self := uint64(e.node)
	now := time.Now()
	ok, caught := true, 0
	var followers, lagging []uint64
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		upToDate := pr.Match == last && pr.State == tracker.StateReplicate
		live := id == self || now.Sub(e.lastHeard(consensus.NodeID(id))) < e.cfg.electionTimeout()
		switch {
		case id == self:
			upToDate = true
		case upToDate:
			followers = append(followers, id)
		case live:
			ok = false // a live follower lags: keep replicating
		default:
			lagging = append(lagging, id)
		}
		if upToDate && live && typ == raft.ProgressTypePeer {
			caught++
		}
	})
	voters := len(g.confs[len(g.confs)-1].cs.GetVoters())
	if !ok || caught <= voters/2 {
		return
	}
	for _, id := range followers {
		m := &pb.Message{
			Type:    pb.MsgHeartbeat.Enum(),
			To:      new(id),
			From:    new(self),
			Term:    new(bs.GetTerm()),
			Commit:  new(bs.GetCommit()),
			Context: quiesceCtx,
		}
		data, err := proto.Marshal(m)
		if err != nil {
			return
		}
		e.tr.Send(consensus.NodeID(id), []transport.Message{{Group: g.id, Data: data}})
	}
	g.qLagging.Store(&lagging)
	g.qLeader.Store(self)
	g.quiesced.Store(true)
}

// laggingHeard reports whether a follower that a quiesced leader left
// behind (unreachable at the time) has been heard from since.
func (e *Engine) laggingHeard(g *group, now time.Time) bool {
	ids := g.qLagging.Load()
	if ids == nil {
		return false
	}
	for _, id := range *ids {
		if now.Sub(e.lastHeard(consensus.NodeID(id))) < e.cfg.electionTimeout() {
			return true
		}
	}
	return false
}

// quorumLive reports whether a quiesced leader still hears a quorum of its
// voters' nodes; if not it must wake so that CheckQuorum can depose it.
func (e *Engine) quorumLive(g *group) bool {
	st := g.Status()
	live := 0
	now := time.Now()
	for _, v := range st.Voters {
		if v == e.node || now.Sub(e.lastHeard(v)) < e.cfg.electionTimeout() {
			live++
		}
	}
	return live > len(st.Voters)/2
}
