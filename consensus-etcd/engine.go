package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport"
	"github.com/chronik-go/chronik/core/storage"
)

// Engine runs the Raft groups of one broker on etcd raft.
type Engine struct {
	cfg   Config
	node  consensus.NodeID
	store storage.Store
	log   *slog.Logger
	rlog  raft.Logger
	tr    *transport.Transport
	sched *scheduler

	ctx    context.Context // canceled by Shutdown, after the groups stopped
	cancel context.CancelFunc
	wg     sync.WaitGroup // ticker and snapshot senders
	stopT  chan struct{}  // stops the ticker

	mu     sync.RWMutex
	groups map[storage.GroupID]*group
	closed bool

	stall stallClock // synced writes, for the ticker

	heardMu sync.Mutex
	heard   map[consensus.NodeID]time.Time // last message of any kind from a node
}

var _ consensus.Engine = (*Engine)(nil)

// New starts an engine: its transport listener, worker pool and ticker.
func New(_ context.Context, set component.Settings, cfg Config, p consensus.Params) (*Engine, error) {
	set = set.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p.Node == 0 || p.Store == nil {
		return nil, consensus.Errorf(consensus.CodeInvalid, "etcd: node id and store are required")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.MaxBatchGroups == 0 {
		cfg.MaxBatchGroups = 64
	}
	e := &Engine{
		cfg:    cfg,
		node:   p.Node,
		store:  p.Store,
		log:    set.Logger.With("node", uint64(p.Node)),
		groups: make(map[storage.GroupID]*group),
		heard:  make(map[consensus.NodeID]time.Time),
		stopT:  make(chan struct{}),
	}
	e.rlog = raftLogger{e.log}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	tr, err := transport.New(transport.Config{Node: p.Node, Listen: p.Listen, Handler: (*handler)(e), Logger: e.log})
	if err != nil {
		e.cancel()
		return nil, err
	}
	e.tr = tr
	for id, addr := range p.Peers {
		tr.SetPeer(id, addr)
	}
	e.sched = newScheduler(cfg.Workers, cfg.MaxBatchGroups, e.process)
	e.wg.Go(e.ticker)
	return e, nil
}

// Addr is the address peers reach this engine at.
func (e *Engine) Addr() string { return e.tr.Addr() }

// SetPeer sets the address of another broker's engine.
func (e *Engine) SetPeer(_ context.Context, id consensus.NodeID, addr string) error {
	if id == 0 {
		return consensus.Errorf(consensus.CodeInvalid, "peer id 0")
	}
	e.tr.SetPeer(id, addr)
	return nil
}

// Group returns a started group.
func (e *Engine) Group(id storage.GroupID) (consensus.Group, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	g, ok := e.groups[id]
	if !ok {
		return nil, false
	}
	return g, true
}

func (e *Engine) group(id storage.GroupID) *group {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.groups[id]
}

// StartGroup starts (or resumes from the store) one group.
func (e *Engine) StartGroup(ctx context.Context, spec consensus.GroupSpec) (consensus.Group, error) {
	if spec.StateMachine == nil {
		return nil, consensus.Errorf(consensus.CodeInvalid, "group %d: nil state machine", spec.ID)
	}
	e.mu.Lock()
	defer e.mu.Unlock() // StartGroup is rare; holding the lock keeps a duplicate start out
	if e.closed {
		return nil, consensus.ErrStopped
	}
	if _, ok := e.groups[spec.ID]; ok {
		return nil, consensus.Errorf(consensus.CodeExists, "group %d is already started", spec.ID)
	}
	g, err := e.newGroup(ctx, spec)
	if err != nil {
		return nil, err
	}
	e.groups[spec.ID] = g
	e.sched.enqueue(g)
	return g, nil
}

func (e *Engine) newGroup(ctx context.Context, spec consensus.GroupSpec) (*group, error) {
	lg, err := e.store.Log(spec.ID)
	if err != nil {
		return nil, errStorage(err)
	}
	blob, err := lg.State()
	if err != nil {
		return nil, errStorage(err)
	}
	hs, snap, err := decodeState(blob)
	if err != nil {
		return nil, consensus.Errorf(consensus.CodeStorage, "group %d: %w", spec.ID, err)
	}
	last, err := lg.LastIndex()
	if err != nil {
		return nil, errStorage(err)
	}
	snapB, err := proto.Marshal(snap)
	if err != nil {
		return nil, consensus.Errorf(consensus.CodeInternal, "group %d: %w", spec.ID, err)
	}
	g := &group{
		e:        e,
		id:       spec.ID,
		sm:       spec.StateMachine,
		changed:  make(chan struct{}),
		stoppedC: make(chan struct{}),
		rs:       &raftStorage{log: lg, hs: hs, snap: snap, snapB: snapB},
		hs:       hs,
		pending:  make(map[uint64]*proposal),
		applied:  snap.GetMetadata().GetIndex(),
	}
	g.confs = []confAt{{index: g.applied, cs: snap.GetMetadata().GetConfState()}}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        uint64(e.node),
		ElectionTick:              e.cfg.ElectionTicks,
		HeartbeatTick:             e.cfg.HeartbeatTicks,
		Storage:                   g.rs,
		Applied:                   g.applied,
		MaxSizePerMsg:             e.cfg.MaxSizePerMsg,
		MaxCommittedSizePerReady:  4 * e.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           e.cfg.MaxInflightMsgs,
		CheckQuorum:               true,
		ReadOnlyOption:            raft.ReadOnlySafe, // ReadBarrier: a quorum round per read, no lease
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    e.rlog,
	})
	if err != nil {
		return nil, consensus.Errorf(consensus.CodeInternal, "group %d: %w", spec.ID, err)
	}
	g.rn = rn
	fresh := blob == nil && last == 0
	if fresh && len(spec.Members) > 0 {
		peers := make([]raft.Peer, len(spec.Members))
		for i, m := range spec.Members {
			peers[i] = raft.Peer{ID: uint64(m)}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, consensus.Errorf(consensus.CodeInternal, "group %d: bootstrap: %w", spec.ID, err)
		}
	}
	if snap.GetMetadata().GetIndex() > 0 {
		s := consensus.Snapshot{Index: snap.GetMetadata().GetIndex(), Data: snap.GetData()}
		if err := g.sm.Restore(ctx, s); err != nil {
			return nil, consensus.Errorf(consensus.CodeInternal, "group %d: restore snapshot: %w", spec.ID, err)
		}
	}
	g.status = g.makeStatus(nil)
	return g, nil
}

// StopGroup stops one group and keeps its data.
func (e *Engine) StopGroup(ctx context.Context, id storage.GroupID) error {
	if e.isClosed() {
		return consensus.ErrStopped
	}
	g := e.group(id)
	if g == nil {
		return consensus.Errorf(consensus.CodeNotFound, "group %d is not started", id)
	}
	return g.stop(ctx, consensus.ErrStopped)
}

// DeleteGroup stops the group (if started) and drops its data.
func (e *Engine) DeleteGroup(ctx context.Context, id storage.GroupID) error {
	if e.isClosed() {
		return consensus.ErrStopped
	}
	if g := e.group(id); g != nil {
		if err := g.stop(ctx, consensus.ErrStopped); err != nil {
			return err
		}
	}
	if err := e.store.Drop(ctx, id); err != nil {
		return errStorage(err)
	}
	return nil
}

// Shutdown stops every group, the workers and the transport.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	groups := make([]*group, 0, len(e.groups))
	for _, g := range e.groups {
		groups = append(groups, g)
	}
	e.mu.Unlock()
	var firstErr error
	for _, g := range groups {
		if err := g.stop(ctx, consensus.ErrStopped); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	close(e.stopT)
	e.cancel()
	e.sched.stop()
	_ = e.tr.Close()
	e.wg.Wait()
	return firstErr
}

func (e *Engine) isClosed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.closed
}

// removeGroup forgets g (if it is still the registered group for its id).
func (e *Engine) removeGroup(g *group) {
	e.mu.Lock()
	if e.groups[g.id] == g {
		delete(e.groups, g.id)
	}
	e.mu.Unlock()
}

func (e *Engine) snapshotGroups() []*group {
	e.mu.RLock()
	defer e.mu.RUnlock()
	gs := make([]*group, 0, len(e.groups))
	for _, g := range e.groups {
		gs = append(gs, g)
	}
	return gs
}

// ticker ticks every group that is not quiesced (none while the disk is
// stalled: see stallClock), sends the per-node liveness message
// every heartbeat interval and wakes quiesced followers whose leader's node
// went quiet.
func (e *Engine) ticker() {
	t := time.NewTicker(e.cfg.TickInterval)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-e.stopT:
			return
		case <-t.C:
		}
		n++
		beat := n%e.cfg.HeartbeatTicks == 0
		if beat {
			for _, id := range e.tr.Peers() {
				e.tr.Send(id, []transport.Message{{}}) // empty: node liveness
			}
		}
		now := time.Now()
		stalled := e.stall.stalled(now, time.Duration(e.cfg.HeartbeatTicks)*e.cfg.TickInterval)
		for _, g := range e.snapshotGroups() {
			if !g.quiesced.Load() {
				if stalled {
					continue // see stallClock
				}
				_ = g.post(func(in *inbox) { in.tick = true })
				continue
			}
			if !beat {
				continue
			}
			lead := g.qLeader.Load()
			wake := false
			if lead == uint64(e.node) {
				wake = !e.quorumLive(g) || e.laggingHeard(g, now)
			} else {
				wake = now.Sub(e.lastHeard(consensus.NodeID(lead))) > e.cfg.electionTimeout()
			}
			if wake {
				_ = g.post(func(in *inbox) { in.wake = true })
			}
		}
	}
}

func (e *Engine) lastHeard(id consensus.NodeID) time.Time {
	e.heardMu.Lock()
	defer e.heardMu.Unlock()
	return e.heard[id]
}

func (e *Engine) sendSnapshot(g *group, m *pb.Message) {
	data, err := proto.Marshal(m)
	to := m.GetTo()
	if err != nil {
		e.log.Error("etcd: marshal snapshot", "group", uint64(g.id), "err", err)
		_ = g.post(func(in *inbox) { in.snaps = append(in.snaps, snapReport{to, raft.SnapshotFailure}) })
		return
	}
	e.wg.Go(func() {
		err := e.tr.SendSnapshot(e.ctx, consensus.NodeID(to), transport.Message{Group: g.id, Data: data})
		st := raft.SnapshotFinish
		if err != nil {
			st = raft.SnapshotFailure
			e.log.Debug("etcd: snapshot send failed", "group", uint64(g.id), "to", to, "err", err)
		}
		_ = g.post(func(in *inbox) { in.snaps = append(in.snaps, snapReport{to, st}) })
	})
}

// handler is the engine's transport.Handler.
type handler Engine

func (h *handler) HandleMessages(from consensus.NodeID, msgs []transport.Message) {
	e := (*Engine)(h)
	e.heardMu.Lock()
	e.heard[from] = time.Now()
	e.heardMu.Unlock()
	for _, m := range msgs {
		if len(m.Data) == 0 {
			continue // node liveness
		}
		g := e.group(m.Group)
		if g == nil {
			continue // not started here (yet): raft retries
		}
		rm := &pb.Message{}
		if err := proto.Unmarshal(m.Data, rm); err != nil {
			e.log.Warn("etcd: bad message", "from", uint64(from), "group", uint64(m.Group), "err", err)
			continue
		}
		_ = g.post(func(in *inbox) { in.msgs = append(in.msgs, rm) })
	}
}

func (h *handler) HandleSnapshot(_ context.Context, from consensus.NodeID, m transport.Message) error {
	e := (*Engine)(h)
	g := e.group(m.Group)
	if g == nil {
		return fmt.Errorf("etcd: group %d is not started on node %d", m.Group, e.node)
	}
	rm := &pb.Message{}
	if err := proto.Unmarshal(m.Data, rm); err != nil {
		return fmt.Errorf("etcd: bad snapshot message: %w", err)
	}
	return g.post(func(in *inbox) { in.msgs = append(in.msgs, rm) })
}
